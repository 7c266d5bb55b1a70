"""Who wears the look: gender and age group from the catalog neighbours of the person and their garments, preferred
(not required) in each garment's matches."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from sveta.engines.search import VOTE_TEMPERATURE, VOTERS, Match, Searcher
from sveta.images.people import Person, Region
from sveta.images.prepare import crop_box
from sveta.index.base import Filter, Hit

MALE, FEMALE, KIDS = ("Men", "Boys"), ("Women", "Girls"), ("Boys", "Girls")  # Myntra's; Unisex tells nothing
UNISEX = "Unisex"
# The whole person (hair, face, build) says more than the garment crops, which are cut to the garment and lose the
# hair: on 109 demo-catalog photos of worn items (votes without the item itself), the person crop alone got 93
# genders right, the garment crops alone 77 (many men's T-shirts pull a plain white top to Men); both, weighted
# 2/3 + 1/3, 91 with 4 left unassumed. The 6 kids among them were all taken for adults: too few kids' items vote.
PERSON_WEIGHT = 2 / 3
KIDS_SHARE = 0.5  # a kids' guess needs most of the votes: kids' items are rare, so adult is the safe default
MIN_CONFIDENCE = 0.6  # below this, nothing is assumed
SOURCE = "garment neighbours"
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Wearer:
    gender: str  # Men / Women / Boys / Girls
    confidence: float

    @property
    def age_group(self) -> str:
        return "Kids" if self.gender in KIDS else "Adult"

    @property
    def preferred(self) -> list[str]:
        """The genders whose items lead the matches."""
        return [self.gender, UNISEX]

    def as_dict(self) -> dict[str, Any]:
        return {
            "gender": self.gender,
            "age_group": self.age_group,
            "confidence": round(self.confidence, 2),
            "from": SOURCE,
        }


def person_crop(image: Image.Image, person: Person) -> Image.Image:
    """The whole person, hair and face included, on white: a catalog photo of a model wearing the look."""
    ys, xs = np.nonzero(person.mask)
    if not len(xs):
        return image
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    mask = person.mask[box[1] : box[3], box[0] : box[2]]
    crop = crop_box(image, box)
    return Image.composite(crop, Image.new("RGB", crop.size, WHITE), Image.fromarray(mask.astype(np.uint8) * 255))


def estimate_wearers(searcher: Searcher, regions: Sequence[Region], vectors: np.ndarray) -> dict[int | None, Wearer]:
    """Each person's wearer (person index -> Wearer), from `vectors`: one per region, then one per person crop."""
    votes = gender_votes(searcher, vectors)
    garments, people = votes[: len(regions)], votes[len(regions) :]
    found = {
        p: wearer_of(own, [v for r, v in zip(regions, garments, strict=True) if r.person == p])
        for p, own in enumerate(people)
    }
    return {p: w for p, w in found.items() if w is not None}  # looked up by a region's person (None: a product)


def gender_votes(searcher: Searcher, vectors: np.ndarray) -> list[dict[str, float]]:
    """Per vector: the genders of its VOTERS nearest products, softmax-weighted by score, summing to 1."""
    hits = searcher.index.search(vectors, VOTERS, Filter())
    metas = searcher.stored_meta([h.id for row in hits for h in row])  # the index's gender: no catalog read
    genders = {h.product_id: meta.gender for row in hits for h in row if (meta := metas.get(h.id)) is not None}
    return [_votes(row, genders) for row in hits]


def _votes(hits: list[Hit], genders: dict[int, str | None]) -> dict[str, float]:
    votes: defaultdict[str, float] = defaultdict(float)
    for hit in hits:
        gender = genders.get(hit.product_id)
        if gender:
            votes[gender] += float(np.exp((hit.score - hits[0].score) / VOTE_TEMPERATURE))
    total = sum(votes.values())
    return {g: v / total for g, v in votes.items()} if total > 0 else {}


def wearer_of(person: dict[str, float], garments: list[dict[str, float]]) -> Wearer | None:
    """The wearer the person's votes and their garments' (mean) votes point to: sex and age group decided apart, so
    that a few boys' items among the neighbours count for male without making an adult a kid."""
    pooled: defaultdict[str, float] = defaultdict(float)
    for gender, share in person.items():
        pooled[gender] += share * (PERSON_WEIGHT if garments else 1.0)
    for votes in garments:
        for gender, share in votes.items():
            pooled[gender] += share * (1 - PERSON_WEIGHT if person else 1.0) / len(garments)
    male, female = sum(pooled[g] for g in MALE), sum(pooled[g] for g in FEMALE)
    if male + female <= 0:
        return None
    kids = sum(pooled[g] for g in KIDS) / (male + female)
    is_kid = kids >= KIDS_SHARE
    gender = (KIDS if is_kid else ("Men", "Women"))[0 if male > female else 1]
    confidence = max(male, female) / (male + female) * (kids if is_kid else 1 - kids)
    return Wearer(gender, confidence) if confidence >= MIN_CONFIDENCE else None


def search_preferring(
    searcher: Searcher, vector: np.ndarray, label: str, k: int, flt: Filter, wearer: Wearer | None
) -> list[Match]:
    """The k best matches under `flt`: the wearer's gender (and Unisex) first, then the others to fill up to k."""
    if wearer is None:
        return searcher.search_vector(vector, label, k, flt, None).matches
    first = searcher.search_vector(vector, label, k, replace(flt, gender=wearer.preferred), None).matches
    if len(first) >= k:
        return first
    taken = [*flt.exclude_products, *(m.card.product_id for m in first)]
    rest = searcher.search_vector(vector, label, k - len(first), replace(flt, exclude_products=taken), None)
    return first + rest.matches


def assumed_of(wearers: Iterable[tuple[int | None, Wearer | None]]) -> dict[str, Any] | None:
    """What the answer says it assumed: the most prominent person's wearer; each person's when several differ."""
    by_person = {p: w for p, w in wearers if p is not None and w is not None}
    if not by_person:
        return None
    first = by_person[min(by_person)].as_dict()
    if len({w.gender for w in by_person.values()}) > 1:
        first["people"] = {str(p): w.as_dict() for p, w in sorted(by_person.items())}
    return first
