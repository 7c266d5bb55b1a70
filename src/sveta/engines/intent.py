"""What a parsed query asks of a product: hard filters (gender, brand, price, "not ..."), soft wants, and agreement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from sveta.catalog.queries import ProductCard
from sveta.index.base import Filter
from sveta.vocab.query import Intent
from sveta.vocab.reading import canonical

# Who a gender word lets in: "men's" shows men's and unisex items; a child's gender stays a child's.
GENDERS = {
    "Men": ["Men", "Unisex"],
    "Women": ["Women", "Unisex"],
    "Boys": ["Boys"],
    "Girls": ["Girls"],
    "Unisex": ["Unisex"],
}
KIDS = ["Boys", "Girls"]
# Soft attributes and what agreeing on each is worth (category outweighs the rest: "red dress" is a dress first).
SOFT = {"category": 3.0, "colour": 1.5, "pattern": 1.0, "sleeve_length": 1.0, "neckline": 1.0, "material": 1.0,
        "fit": 0.5, "occasion": 0.5}  # fmt: skip
NEAR_SHADE = 0.5  # "navy" asked, Blue found: half an agreement
EXACT_GENDER = 0.5  # "men's" asked: Men before Unisex
ORIGIN_ORDER = ("seller", "text", "image")  # the listing's own value first; photo tags fill what it lacks
ORIGIN_LABEL = {"seller": "seller", "text": "title", "image": "photo"}
_CARD_FIELDS = ("category", "colour", "gender")  # also on the product row (ingest picks them), as a fallback

Attributes = Sequence[tuple[str, str, str, float]]  # (name, value, origin, confidence), as the catalog stores them


def hard_filter(intent: Intent, flt: Filter | None, *, gender_and_brand: bool = True) -> Filter:
    """``flt`` narrowed by what the words require: gender, brand, price, and the excluded values the index knows."""
    out = replace(flt) if flt else Filter()
    out.exclude = {f: list(v) for f, v in out.exclude.items()}
    if gender_and_brand and out.gender is None:
        if intent.gender:
            out.gender = GENDERS.get(intent.gender, [intent.gender])
        elif intent.age_group == "Kids":
            out.gender = KIDS
    if gender_and_brand and intent.brand and out.brand is None:
        out.brand = [intent.brand]
    if intent.price_min is not None:
        out.price_min = max(intent.price_min, out.price_min or intent.price_min)
    if intent.price_max is not None:
        out.price_max = min(intent.price_max, out.price_max if out.price_max is not None else intent.price_max)
    for name in ("category", "colour", "gender", "brand"):
        if intent.excluded.get(name):
            out.exclude[name] = [*out.exclude.get(name, []), *intent.excluded[name]]
    return out


_CHECKED = ("category", "gender", "colour", "brand", "source")


def checker(flt: Filter) -> Callable[[ProductCard], bool]:
    """Whether a product (found by its words, not by the index) meets ``flt`` as the index would apply it; the
    filter's values are folded once, for all the cards checked."""
    allowed = {n: {_fold(a) for a in values} for n in _CHECKED if (values := getattr(flt, n)) is not None}
    excluded = {n: {_fold(u) for u in flt.exclude[n]} for n in _CHECKED if flt.exclude.get(n)}
    low, high, available, products = flt.price_min, flt.price_max, flt.available, set(flt.exclude_products)

    def check(card: ProductCard) -> bool:
        for name in _CHECKED:
            value = getattr(card, name)
            folded = None if value is None else _fold(value)
            if name in allowed and (folded is None or folded not in allowed[name]):
                return False
            if folded is not None and folded in excluded.get(name, ()):
                return False
        price = card.price
        if low is not None and (price is None or price < low):
            return False
        if high is not None and (price is None or price > high):
            return False
        if available is not None and card.available != available:
            return False
        return card.product_id not in products

    return check


def _fold(value: str) -> str:
    return " ".join(value.casefold().split())


def wanted(intent: Intent) -> dict[str, str]:
    """The soft attributes the words name: attribute -> canonical value."""
    return {name: value for name in SOFT if (value := getattr(intent, name)) is not None}


def best_values(card: ProductCard, attributes: Attributes) -> dict[str, tuple[str, str, float]]:
    """Attribute -> (value, origin, confidence): the seller's value, else the title's, else the photo's."""
    best: dict[str, tuple[str, str, float]] = {}
    rank = {origin: i for i, origin in enumerate(ORIGIN_ORDER)}
    for name, value, origin, confidence in attributes:
        held = best.get(name)
        if held is None or rank.get(origin, 9) < rank.get(held[1], 9):
            best[name] = (canonical(name, value), origin, confidence)  # a feed's "Tshirts" is the vocabulary's T-Shirt
    for name in _CARD_FIELDS:
        value = getattr(card, name)
        if value and name not in best:
            best[name] = (value, "seller", 1.0)
    return best


def excluded_by(intent: Intent, card: ProductCard, values: dict[str, tuple[str, str, float]]) -> bool:
    """Whether the product has something the shopper said "not" / "without" to."""
    for name, unwanted in intent.excluded.items():
        if name == "brand" and card.brand and card.brand.casefold() in {u.casefold() for u in unwanted}:
            return True
        if name == "words" and any(w.casefold() in card.title.casefold() for w in unwanted):
            return True
        held = values.get(name)
        if held and held[0].casefold() in {u.casefold() for u in unwanted}:
            return True
    return False


def agreement(intent: Intent, card: ProductCard, values: dict[str, tuple[str, str, float]]) -> tuple[float, list[str]]:
    """How far the product has what the words ask (0..1, confidence-weighted), and the reasons to show."""
    asked = wanted(intent)
    total = sum(SOFT[name] for name in asked) + (EXACT_GENDER if intent.gender else 0.0)
    if not total:
        return 0.0, []
    score, why = 0.0, []
    for name, value in asked.items():
        held = values.get(name)
        if held is None:
            continue
        credit = _credit(name, value, held[0], intent)
        if credit:
            score += SOFT[name] * credit * held[2]
            why.append(f"{_label(name)}: {held[0]} ({ORIGIN_LABEL.get(held[1], held[1])})")
    if intent.gender and card.gender == intent.gender:
        score += EXACT_GENDER
        why.append(f"gender: {card.gender}")
    return score / total, why


def _credit(name: str, asked: str, held: str, intent: Intent) -> float:
    if held.casefold() == asked.casefold():
        return 1.0
    if name == "colour" and held in intent.colour_near:
        return NEAR_SHADE
    return 0.0


def _label(name: str) -> str:
    return name.replace("_", " ")


def price_band_fit(band: str | None, price: float | None, cuts: tuple[float, float] | None) -> float:
    """1 when a price sits in the asked band ("cheap": the lowest third of the candidates), else 0."""
    if band is None or price is None or cuts is None:
        return 0.0
    low, high = cuts
    inside = {"low": price <= low, "mid": low < price <= high, "high": price > high}
    return 1.0 if inside.get(band, False) else 0.0


__all__ = ["agreement", "best_values", "checker", "excluded_by", "hard_filter", "price_band_fit", "wanted"]
