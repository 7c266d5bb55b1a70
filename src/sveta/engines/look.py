"""`sveta look`: the garments in a photo of a person (or a product shot), each tagged and searched in its categories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from sveta.engines.search import Match, Searcher, filter_summary
from sveta.engines.wearer import Wearer, assumed_of, estimate_wearers, person_crop, search_preferring
from sveta.errors import InputError
from sveta.images.colour import describe_lab, rgb_to_lab
from sveta.images.people import Box, Person, PoseFinder, Region, person_regions, product_region
from sveta.images.prepare import crop_box, load_image, standardise, to_rgb
from sveta.index.base import Filter
from sveta.learn.features import FeatureExtractor, Features
from sveta.learn.store import ModelCache
from sveta.vocab.reading import canonical, category_group

if TYPE_CHECKING:
    from sveta.learn.heads import AttributeModel

# The category groups (attributes.yaml) a region's garment can belong to; a product shot may be anything.
REGION_GROUPS = {
    "upper": ("topwear", "outerwear"),
    "lower": ("bottomwear",),
    "full": ("dress",),
    "feet": ("footwear",),
}
DRESS_SHARE = 0.5  # a person's full-length crop is one garment when the model puts this much on dress categories
SEARCH_MASS = 0.8  # search in the region's likeliest categories covering this much of its probability (3 at most)
MIN_PRODUCT_CONFIDENCE = 0.35  # below this on a photo with no person, there is no garment to speak of
# A bottom's category: the model's probabilities within the slot, blended with a vote of its nearest catalog
# neighbours in the slot. Bottoms differ in fabric that the neighbours see (faded denim sits next to jeans and denim
# skirts) on the odd crops a lower body gives (a seated person's lap, legs cut by the photo's edge), where the head
# spreads thin over look-alikes (leggings, skirts, jeans). Tops differ in sleeves and neckline, which the head reads
# off the upper crop; there the vote only echoes the catalog's many T-shirts (a tank top came back a T-shirt).
VOTED_REGIONS = ("lower",)
VOTE_WEIGHT = 0.5
# Bottoms that leave the knees bare (a catalog's skirts mostly end above them); legs seen covered by the garment
# (knees, or the photo's edge) make them unlikely, legs seen bare make the others unlikely. A prior, not a veto.
KNEE_BARING = ("Shorts", "Skirt")
KNEE_PENALTY = 0.3
WHITE = (255, 255, 255)
MATCH_KEYS = ("product_id", "title", "score", "source_id", "category", "colour", "image_path", "gender")


@dataclass
class Garment:
    region: str
    box: tuple[int, int, int, int]
    category: str | None
    confidence: float
    colour: str
    colour_rgb: tuple[int, int, int]
    searched: list[str]  # its likeliest categories, searched unless the filter named others
    plausible: float  # the model's probability on the region's plausible categories (all of them for a product)
    matches: list[Match] = field(default_factory=list)
    person: int | None = None
    wearer: Wearer | None = None  # who its matches were picked for (that gender first), when anyone was assumed
    crop: Image.Image | None = None  # for the sheet; never stored

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "box": list(self.box),
            "person": self.person,
            "category": self.category,
            "confidence": round(self.confidence, 4),
            "colour": self.colour,
            "colour_rgb": list(self.colour_rgb),
            "plausible": round(self.plausible, 4),
            "searched_categories": self.searched,
            "matches": [m.card.pick(MATCH_KEYS, score=round(m.score, 4)) for m in self.matches],
        }


@dataclass
class LookResult:
    photo: str
    kind: str  # person / product / none
    people: int
    garments: list[Garment]
    size: tuple[int, int]
    message: str = ""
    filters: dict[str, Any] = field(default_factory=dict)  # the conditions given, as the caller gave them
    assumed: dict[str, Any] | None = None  # who the wearer seems to be (wearer.Wearer.as_dict), or None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "photo": self.photo,
            "kind": self.kind,
            "people": self.people,
            "size": list(self.size),
            "message": self.message,
            "garments": [g.as_dict() for g in self.garments],
        }
        return out | ({"filters": self.filters} if self.filters else {}) | {"assumed": self.assumed}


class Looker:
    """Holds the pose model, the trained attribute model and the searcher; each loads once, on first use."""

    def __init__(self, searcher: Searcher, model_name: str = "catalog", models: ModelCache | None = None) -> None:
        self.searcher, self.settings, self.model_name = searcher, searcher.settings, model_name
        self._pose: PoseFinder | None = None
        self._extractor: FeatureExtractor | None = None
        self._models = models or ModelCache()  # an app shares one cache between its engines

    @property
    def pose(self) -> PoseFinder:
        if self._pose is None:
            self._pose = PoseFinder()
        return self._pose

    @property
    def model(self) -> AttributeModel:
        return self._models.get(self.settings, self.model_name)

    def warm_up(self) -> None:
        """Load every model now (for timing, or a server), so the first photo does not pay for it."""
        self.look_image(Image.new("RGB", (64, 64), WHITE), "warm-up", k=1)

    def look(self, photo: str | Path, k: int = 5, filters: Filter | None = None, assume: bool = True) -> LookResult:
        """The photo's garments, each with its k best matches under `filters` (see look_image)."""
        if not Path(photo).is_file():
            raise InputError(f"no such photo: {photo}", "give a path to a JPEG/PNG/WEBP file")
        image = load_image(Path(photo), max_pixels=self.settings.image_max_pixels)
        return self.look_image(to_rgb(ImageOps.exif_transpose(image)), str(photo), k, filters, assume)

    def look_image(
        self, image: Image.Image, label: str, k: int = 5, filters: Filter | None = None, assume: bool = True
    ) -> LookResult:
        """Every garment searched in its own likeliest categories, or in `filters.category` when that is given;
        the filter's other conditions apply to every garment's matches (the categories it is tagged with stay).
        A person's matches put the gender the wearer seems to be first, unless `assume` is off or a gender is given."""
        flt = filters or Filter()
        people = self.pose.find(image)
        regions = [r for i, p in enumerate(people) for r in person_regions(p, image.size, i)]
        if people:
            garments = self._person_garments(image, regions, k, flt, people if assume and not flt.gender else [])
            kind = "person"
        else:
            garments = [g for g in self._garments(image, [product_region(image)], k, flt) if _confident(g)]
            kind = "product" if garments else "none"
        message, assumed = _message(kind, len(people), garments), assumed_of((g.person, g.wearer) for g in garments)
        return LookResult(label, kind, len(people), garments, image.size, message, filter_summary(flt), assumed)

    def _person_garments(
        self, image: Image.Image, regions: list[Region], k: int, flt: Filter, people: list[Person]
    ) -> list[Garment]:
        garments = self._garments(image, regions, k, flt, people)
        # a full-length region is one garment (a dress, a jumpsuit) only when the model says so; then it replaces
        # that person's upper and lower garments, otherwise it is dropped
        keep: list[Garment] = []
        for person in sorted({g.person for g in garments}, key=lambda p: p or 0):
            own = [g for g in garments if g.person == person]
            full = next((g for g in own if g.region == "full"), None)
            one_piece = full is not None and full.plausible >= DRESS_SHARE
            keep += [
                g for g in own if (g.region not in ("upper", "lower", "full")) or (g.region == "full") == one_piece
            ]
        return keep

    def _garments(
        self, image: Image.Image, regions: list[Region], k: int, flt: Filter, people: Sequence[Person] = ()
    ) -> list[Garment]:
        """The regions' garments; `people` given, each person's matches are picked for who they seem to be."""
        if not regions:
            return []
        crops = [_masked_crop(image, r) for r in regions] + [person_crop(image, p) for p in people]
        extractor = self._features_extractor()
        size = self.settings.image_size
        features = Features.from_matrix(
            extractor.embed_prepared([extractor.prepare(standardise(c, size, background=WHITE)) for c in crops])
        )
        heads = self.model.probabilities(features)
        vectors = self._search_vectors(features, crops)
        wearers = estimate_wearers(self.searcher, regions, vectors) if people else {}
        garments = []
        for n, region in enumerate(regions):
            wearer = wearers.get(region.person)
            garments.append(
                self._garment(image, region, {h: p[n] for h, p in heads.items()}, vectors[n], k, flt, wearer)
            )
            garments[-1].crop = crops[n]
        return garments

    def _garment(
        self,
        image: Image.Image,
        region: Region,
        heads: dict[str, np.ndarray],
        vector: np.ndarray,
        k: int,
        flt: Filter,
        wearer: Wearer | None = None,
    ) -> Garment:
        """One region tagged (category, colour) from its heads' probabilities and searched in its categories
        (the filter's, when it names some) under the filter's other conditions."""
        pixels = garment_lab(image, region)
        info = describe_lab(pixels)
        colour, rgb = info.name, info.rgb
        if "colour" in heads:  # the trained head, on the same masked crop, knows shaded white and faded denim
            colour = self._colour_head(heads["colour"]) or colour
        covered = legs_covered(image, region, pixels) if region.name == "lower" else None
        category, confidence, plausible, searched = self._category(region.name, heads["category"], vector, covered)
        wanted = [canonical("category", c) for c in flt.category] if flt.category else searched or None
        hits = search_preferring(self.searcher, vector, region.name, k, replace(flt, category=wanted), wearer)
        return Garment(
            region.name, region.box, category, confidence, colour, rgb, searched, plausible, hits, region.person, wearer
        )

    def _colour_head(self, p: np.ndarray) -> str | None:
        """The colour head's answer when it is sure: shaded white splits into many palette names, not for it."""
        best = int(np.argmax(p))
        return self.model.classes["colour"][best] if p[best] >= self.settings.tag_min_confidence else None

    def _features_extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = FeatureExtractor(self.settings, backbone=self.model.backbone)
        return self._extractor

    def _search_vectors(self, features: Features, crops: list[Image.Image]) -> np.ndarray:
        embedder = self.searcher.embedder
        if embedder.spec == f"tuned:{self.model_name}":  # the index's own model: reuse the features just computed
            return self.model.embed(features)
        size = self.settings.image_size
        return embedder.embed_prepared([embedder.prepare(standardise(c, size, background=WHITE)) for c in crops])

    def _category(
        self, region: str, p: np.ndarray, vector: np.ndarray, covered: bool | None = None
    ) -> tuple[str | None, float, float, list[str]]:
        """The best plausible category, its share of the plausible ones, their raw total, and the ones to search."""
        names = [canonical("category", c) for c in self.model.classes["category"]]
        groups = REGION_GROUPS.get(region)
        allowed = np.array([groups is None or category_group(n) in groups for n in names])
        if not allowed.any():
            return None, 0.0, 0.0, []
        share = _normalised(np.where(allowed, p, 0.0))
        if region in VOTED_REGIONS:
            share = self._with_votes(share, names, allowed, vector)
        if covered is not None:
            # legs seen covered make knee-baring bottoms unlikely; legs seen bare, the others
            baring = np.array([n in KNEE_BARING for n in names])
            share = _normalised(share * np.where(baring == covered, KNEE_PENALTY, 1.0))
        order = [i for i in np.argsort(-share) if allowed[i]]
        searched, mass = [], 0.0
        for i in order[:3]:
            if names[i] not in searched:
                searched.append(names[i])
            mass += float(share[i])
            if mass >= SEARCH_MASS:
                break
        # a product shot's confidence is the model's own; a region's is its share among plausible categories
        confidence = float(share[order[0]]) if groups is not None else float(p[order[0]])
        return names[order[0]], confidence, float(p[allowed].sum()), searched

    def _with_votes(self, share: np.ndarray, names: list[str], allowed: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The model's share blended with the score-weighted categories of the nearest products in the slot."""
        slot = sorted({n for n, ok in zip(names, allowed, strict=True) if ok})
        votes = self.searcher.category_votes(vector, Filter(category=slot))  # no user filter: it tags, not picks
        # a category two model classes map to splits its vote between them
        vote = np.array([votes.get(n, 0.0) / names.count(n) for n in names]) * allowed
        if vote.sum() <= 0:
            return share
        return (1 - VOTE_WEIGHT) * share + VOTE_WEIGHT * _normalised(vote)


LIGHT_GARMENT_L, HAIR_MAX_L = 55.0, 30.0  # Lab lightness: a light core; pixels darker than hair's shine
MIN_GARMENT = 0.3  # share of a region's person pixels that must stay once skin is left out, else skin stays
GARMENT_DELTA = 25.0  # Lab distance within which a pixel is the garment's colour (shading, fades, texture)
EDGE_ROWS = 8  # a lower region cut by the photo's edge: its last 1/8 of rows show how the legs end there


def garment_lab(image: Image.Image, region: Region) -> np.ndarray:
    """Lab pixels of the region's core that are the garment: the person mask's, less skin when that leaves enough."""
    x0, y0, x1, y1 = region.core
    bx, by = region.box[:2]
    pixels = np.asarray(image.crop(region.core).convert("RGB"))
    mask = region.mask[y0 - by : y1 - by, x0 - bx : x1 - bx]
    step = max(1, int(np.sqrt(mask.size / 4000)))  # ~4000 pixels name a colour as well as a million
    lab = rgb_to_lab(pixels[::step, ::step][mask[::step, ::step]])
    if len(lab) < 20:
        lab = rgb_to_lab(pixels[::step, ::step])
    skin = _skin(lab)
    return lab[~skin] if (~skin).mean() >= MIN_GARMENT else lab  # a skin-toned garment keeps its pixels


def legs_covered(image: Image.Image, region: Region, garment: np.ndarray) -> bool | None:
    """Does the bottom cover the lowest leg parts the photo shows (True), do they show skin (False), or no telling?

    Those parts are the seen knees; with none, and the legs cut by the photo's lower edge, that edge's rows: a bottom
    running off the photo shows no hem, so nothing says it is short (a strip of thigh looks like shorts to the model).
    """
    if len(garment) < 20:
        return None
    reference = np.median(garment, axis=0)
    if _skin(reference[None])[0]:  # a skin-toned bottom looks like a bare leg
        return None
    x0, y0, x1, y1 = region.box
    patches = [(max(x - r, x0), max(y - r, y0), min(x + r, x1), min(y + r, y1)) for x, y, r in region.knees]
    if not patches and y1 >= image.height:
        patches = [(x0, max(y0, y1 - max(2, (y1 - y0) // EDGE_ROWS)), x1, y1)]
    answers = {_covered(image, region, patch, reference) for patch in patches} - {None}
    return answers.pop() if len(answers) == 1 else None


def _covered(image: Image.Image, region: Region, patch: Box, reference: np.ndarray) -> bool | None:
    """Are the person's pixels in the patch mostly the garment's colour (True) or skin (False)?"""
    x0, y0, x1, y1 = patch
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    bx, by = region.box[:2]
    mask = region.mask[y0 - by : y1 - by, x0 - bx : x1 - bx]
    lab = rgb_to_lab(np.asarray(image.crop(patch).convert("RGB"))[mask])
    if len(lab) < 20:
        return None
    cloth = float((np.linalg.norm(lab - reference, axis=1) < GARMENT_DELTA).mean())
    skin = float(_skin(lab).mean())
    return None if max(cloth, skin) < 0.5 else cloth > skin


def _skin(lab: np.ndarray) -> np.ndarray:
    """Skin-toned Lab pixels (light to medium skin; very dark skin is missed and stays in, which is safe)."""
    a, b = lab[..., 1], lab[..., 2]
    return (a > 6) & (a < 30) & (b > 10) & (b < 38) & (lab[..., 0] > 30)


def _masked_crop(image: Image.Image, region: Region) -> Image.Image:
    """The region's crop with everything but the person (or item) painted white, like a catalog photo."""
    crop = crop_box(image, region.box)
    if region.name in ("upper", "full"):
        mask = _without_hair(crop, region)
    elif region.name == "lower":  # hands and arms resting on a lap or by the hips are no part of the bottom
        mask = _without_skin(crop, region)
    else:
        mask = region.mask
    if mask.all():
        return crop
    white = Image.new("RGB", crop.size, WHITE)
    return Image.composite(crop, white, Image.fromarray(mask.astype(np.uint8) * 255))


def _without_skin(crop: Image.Image, region: Region) -> np.ndarray:
    """The person mask less skin, unless that would leave little: then the garment itself is skin-toned."""
    skin = _skin(rgb_to_lab(np.asarray(crop.convert("RGB"))).reshape(crop.height, crop.width, 3))
    kept = region.mask & ~skin
    return kept if kept.sum() >= MIN_GARMENT * region.mask.sum() else region.mask


def _without_hair(crop: Image.Image, region: Region) -> np.ndarray:
    """The person mask less very dark pixels, when the garment's core is light: long dark hair over a light top
    would otherwise make the search look for black tops. A dark garment keeps them all."""
    lab = rgb_to_lab(np.asarray(crop.convert("RGB"))).reshape(crop.height, crop.width, 3)
    x0, y0, x1, y1 = region.core
    bx, by = region.box[:2]
    core = lab[y0 - by : y1 - by, x0 - bx : x1 - bx][region.mask[y0 - by : y1 - by, x0 - bx : x1 - bx]]
    if not len(core) or float(np.median(core[:, 0])) < LIGHT_GARMENT_L:
        return region.mask
    return region.mask & (lab[:, :, 0] >= HAIR_MAX_L)


def _normalised(p: np.ndarray) -> np.ndarray:
    return p / max(float(p.sum()), 1e-9)


def _confident(garment: Garment) -> bool:
    return garment.confidence >= MIN_PRODUCT_CONFIDENCE


def _message(kind: str, people: int, garments: list[Garment]) -> str:
    if kind == "none":
        return "no person and no product found in the photo"
    if kind == "person" and not garments:
        return f"found {people} person(s) but no garment region large enough to search"
    return f"found {len(garments)} garment(s)" + (f" on {people} person(s)" if kind == "person" else "")
