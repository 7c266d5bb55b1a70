"""`sveta look`: the garments in a photo of a person (or a product shot), each tagged and searched in its categories."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from sveta.errors import InputError
from sveta.images.colour import describe_lab, rgb_to_lab
from sveta.images.prepare import crop_box, load_image, standardise, to_rgb
from sveta.index.base import Filter
from sveta.learn.features import FeatureExtractor, Features
from sveta.people import PoseFinder, Region, person_regions, product_region
from sveta.search import Match, Searcher

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
WHITE = (255, 255, 255)


@dataclass
class Garment:
    region: str
    box: tuple[int, int, int, int]
    category: str | None
    confidence: float
    colour: str
    colour_rgb: tuple[int, int, int]
    searched: list[str]  # the categories the search was restricted to
    plausible: float  # the model's probability on the region's plausible categories (all of them for a product)
    matches: list[Match] = field(default_factory=list)
    person: int | None = None
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
            "matches": [
                {"product_id": m.card.product_id, "title": m.card.title, "score": round(m.score, 4), **_extra(m)}
                for m in self.matches
            ],
        }


@dataclass
class LookResult:
    photo: str
    kind: str  # person / product / none
    people: int
    garments: list[Garment]
    size: tuple[int, int]
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "photo": self.photo,
            "kind": self.kind,
            "people": self.people,
            "size": list(self.size),
            "message": self.message,
            "garments": [g.as_dict() for g in self.garments],
        }


class Looker:
    """Holds the pose model, the trained attribute model and the searcher; each loads once, on first use."""

    def __init__(self, searcher: Searcher, model_name: str = "catalog") -> None:
        self.searcher, self.settings, self.model_name = searcher, searcher.settings, model_name
        self._pose: PoseFinder | None = None
        self._extractor: FeatureExtractor | None = None

    @property
    def pose(self) -> PoseFinder:
        if self._pose is None:
            self._pose = PoseFinder()
        return self._pose

    @property
    def model(self) -> AttributeModel:
        from sveta.learn.catalog import load_model

        return load_model(self.settings, self.model_name)

    def warm_up(self) -> None:
        """Load every model now (for timing, or a server), so the first photo does not pay for it."""
        self.look_image(Image.new("RGB", (64, 64), WHITE), "warm-up", k=1)

    def look(self, photo: str | Path, k: int = 5) -> LookResult:
        if not Path(photo).is_file():
            raise InputError(f"no such photo: {photo}", "give a path to a JPEG/PNG/WEBP file")
        image = load_image(Path(photo), max_pixels=self.settings.image_max_pixels)
        return self.look_image(to_rgb(ImageOps.exif_transpose(image)), str(photo), k)

    def look_image(self, image: Image.Image, label: str, k: int = 5) -> LookResult:
        people = self.pose.find(image)
        regions = [r for i, p in enumerate(people) for r in person_regions(p, image.size, i)]
        if people:
            garments = self._person_garments(image, regions, k)
            kind = "person"
        else:
            garments = [g for g in self._garments(image, [product_region(image)], k) if _confident(g)]
            kind = "product" if garments else "none"
        message = _message(kind, len(people), garments)
        return LookResult(label, kind, len(people), garments, image.size, message)

    def _person_garments(self, image: Image.Image, regions: list[Region], k: int) -> list[Garment]:
        garments = self._garments(image, regions, k)
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

    def _garments(self, image: Image.Image, regions: list[Region], k: int) -> list[Garment]:
        if not regions:
            return []
        crops = [_masked_crop(image, r) for r in regions]
        extractor = self._features_extractor()
        size = self.settings.image_size
        features = Features.from_matrix(
            extractor.embed_prepared([extractor.prepare(standardise(c, size, background=WHITE)) for c in crops])
        )
        heads = self.model.probabilities(features)
        probabilities = heads["category"]
        vectors = self._search_vectors(features, crops)
        garments = []
        for n, region in enumerate(regions):
            category, confidence, plausible, searched = self._category(region.name, probabilities[n])
            colour, rgb = masked_colour(image, region)
            if "colour" in heads:  # the trained head, on the same masked crop, knows shaded white and faded denim
                colour = self._colour_head(heads["colour"][n]) or colour
            flt = Filter(category=searched or None)
            hits = self.searcher.search_vector(vectors[n], region.name, k, flt, None).matches
            garments.append(
                Garment(
                    region.name, region.box, category, confidence, colour, rgb, searched, plausible, hits, region.person
                )
            )
            garments[-1].crop = crops[n]
        return garments

    def _colour_head(self, p: np.ndarray) -> str | None:
        """The colour head's answer when it is sure: shaded white splits into many palette names, not for it."""
        best = int(np.argmax(p))
        return self.model.classes["colour"][best] if p[best] >= self.settings.tag_min_confidence else None

    def _features_extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = FeatureExtractor(self.settings)
        return self._extractor

    def _search_vectors(self, features: Features, crops: list[Image.Image]) -> np.ndarray:
        embedder = self.searcher.embedder
        if embedder.spec == f"tuned:{self.model_name}":  # the index's own model: reuse the features just computed
            return self.model.embed(features)
        size = self.settings.image_size
        return embedder.embed_prepared([embedder.prepare(standardise(c, size, background=WHITE)) for c in crops])

    def _category(self, region: str, p: np.ndarray) -> tuple[str | None, float, float, list[str]]:
        """The best plausible category, its share of the plausible ones, their raw total, and the ones to search."""
        names = [_canonical(c) for c in self.model.classes["category"]]
        groups = REGION_GROUPS.get(region)
        allowed = np.array([groups is None or _group(n) in groups for n in names])
        if not allowed.any():
            return None, 0.0, 0.0, []
        share = np.where(allowed, p, 0.0)
        share = share / max(float(share.sum()), 1e-9)
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


LIGHT_GARMENT_L, HAIR_MAX_L = 55.0, 30.0  # Lab lightness: a light core; pixels darker than hair's shine


def masked_colour(image: Image.Image, region: Region) -> tuple[str, tuple[int, int, int]]:
    """The garment's colour name: the region's core, person-mask pixels only, skin left out when it can be."""
    x0, y0, x1, y1 = region.core
    bx, by = region.box[:2]
    pixels = np.asarray(image.crop(region.core).convert("RGB"))
    mask = region.mask[y0 - by : y1 - by, x0 - bx : x1 - bx]
    step = max(1, int(np.sqrt(mask.size / 4000)))  # ~4000 pixels name a colour as well as a million
    lab = rgb_to_lab(pixels[::step, ::step][mask[::step, ::step]])
    if len(lab) < 20:
        lab = rgb_to_lab(pixels[::step, ::step])
    skin = (lab[:, 1] > 6) & (lab[:, 1] < 30) & (lab[:, 2] > 10) & (lab[:, 2] < 38) & (lab[:, 0] > 30)
    if (~skin).mean() >= 0.3:  # a skin-toned garment keeps its pixels
        lab = lab[~skin]
    info = describe_lab(lab)
    return info.name, info.rgb


def _masked_crop(image: Image.Image, region: Region) -> Image.Image:
    """The region's crop with everything but the person (or item) painted white, like a catalog photo."""
    crop = crop_box(image, region.box)
    mask = _without_hair(crop, region) if region.name in ("upper", "full") else region.mask
    if mask.all():
        return crop
    white = Image.new("RGB", crop.size, WHITE)
    return Image.composite(crop, white, Image.fromarray(mask.astype(np.uint8) * 255))


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


def _confident(garment: Garment) -> bool:
    return garment.confidence >= MIN_PRODUCT_CONFIDENCE


def _message(kind: str, people: int, garments: list[Garment]) -> str:
    if kind == "none":
        return "no person and no product found in the photo"
    if kind == "person" and not garments:
        return f"found {people} person(s) but no garment region large enough to search"
    return f"found {len(garments)} garment(s)" + (f" on {people} person(s)" if kind == "person" else "")


def _canonical(name: str) -> str:
    from sveta.ingest.text_attributes import normalize_value

    return normalize_value("category", name) or name


def _group(category: str) -> str | None:
    from sveta.ingest.text_attributes import vocabulary

    return vocabulary().attributes["category"].groups.get(category)


def _extra(match: Match) -> dict[str, Any]:
    card = match.card
    return {
        "source_id": card.source_id,
        "category": card.category,
        "colour": card.colour,
        "image_path": card.image_path,
    }
