"""Shopper queries made from a labelled catalog's own values, and whether a result answers them."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sveta.catalog.queries import ProductCard

MIN_RELEVANT = 10  # a query needs at least 10 right answers in the gallery, or P@10 could not reach 1
PER_KIND = 40  # queries per kind (spread by a stable hash, not the most frequent first)
PHOTO_QUERIES = 60
T = TypeVar("T")
GENDER_WORDS = {"Men": "men's", "Women": "women's", "Boys": "boys", "Girls": "girls"}
TEXT_KINDS = ("category", "colour_category", "brand_category", "gender_colour_category", "negation")
KINDS = (*TEXT_KINDS, "photo_plus_colour")


@dataclass(frozen=True, slots=True)
class Query:
    """One query: its words (and photo), what a right answer has, and what it must not have."""

    kind: str
    text: str
    want: dict[str, str]
    not_colour: str | None = None
    photo: str | None = None  # a product photo, for photo + words
    product_id: int | None = None  # the photo's own product (left out of its results)
    extra: dict[str, str] = field(default_factory=dict)


def answers(card: ProductCard, query: Query) -> bool:
    """Whether a result is right for the query: every wanted value, and not the excluded colour."""
    for name, value in query.want.items():
        if (getattr(card, name) or "").casefold() != value.casefold():
            return False
    return query.not_colour is None or (card.colour or "").casefold() != query.not_colour.casefold()


def text_queries(cards: Sequence[ProductCard]) -> list[Query]:
    """Category; colour + category; brand + category; gender + colour + category; "CATEGORY not COLOUR"."""
    out = _combos(cards, ("category",), lambda v: _words(v["category"]), "category")
    out += _combos(cards, ("colour", "category"), lambda v: _words(v["colour"], v["category"]), "colour_category")
    out += _combos(cards, ("brand", "category"), lambda v: _words(v["brand"], v["category"]), "brand_category")
    out += _combos(
        cards,
        ("gender", "colour", "category"),
        lambda v: _words(GENDER_WORDS.get(v["gender"], ""), v["colour"], v["category"]),
        "gender_colour_category",
    )
    return out + _negations(cards)


def photo_queries(cards: Sequence[ProductCard]) -> list[Query]:
    """A product's photo with another colour's words ("in red"): right answers keep its category, take the colour."""
    counts = Counter((c.category, c.colour) for c in cards if c.category and c.colour)
    out = []
    for card in _spread(cards, lambda c: str(c.product_id)):
        if not (card.image_path and card.category and card.colour):
            continue
        others = [col for (cat, col), n in counts.items() if cat == card.category and col != card.colour]
        others = [col for col in others if counts[(card.category, col)] >= MIN_RELEVANT]
        if not others:
            continue
        colour = min(others, key=lambda col: _hash(f"{card.product_id}:{col}"))
        want = {"category": card.category, "colour": colour}
        out.append(Query("photo_plus_colour", f"in {colour.lower()}", want, None, card.image_path, card.product_id))
        if len(out) == PHOTO_QUERIES:
            break
    return out


def _combos(
    cards: Sequence[ProductCard], names: tuple[str, ...], words: Callable[[dict[str, str]], str], kind: str
) -> list[Query]:
    counts = Counter(tuple(getattr(c, n) or "" for n in names) for c in cards)
    eligible = [key for key, n in counts.items() if n >= MIN_RELEVANT and all(key) and _askable(names, key)]
    wants = [dict(zip(names, key, strict=True)) for key in _spread(eligible, "|".join)[:PER_KIND]]
    return [Query(kind, words(want), want) for want in wants]


def _askable(names: tuple[str, ...], key: tuple[str, ...]) -> bool:
    values = dict(zip(names, key, strict=True))
    return "gender" not in values or values["gender"] in GENDER_WORDS


def _negations(cards: Sequence[ProductCard]) -> list[Query]:
    """Per category, "not" its most common colour, where at least MIN_RELEVANT items of other colours remain."""
    by_category: dict[str, Counter[str]] = {}
    for card in cards:
        if card.category and card.colour:
            by_category.setdefault(card.category, Counter())[card.colour] += 1
    out = []
    for category in _spread(list(by_category), str):
        colours = by_category[category]
        colour, n = colours.most_common(1)[0]
        if sum(colours.values()) - n >= MIN_RELEVANT and n >= 2:
            text = f"{_words(category)} not {colour.lower()}"
            out.append(Query("negation", text, {"category": category}, colour))
    return out[:PER_KIND]


def _words(*values: str) -> str:
    return " ".join(v.lower() for v in values if v)


def _spread(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    return sorted(items, key=lambda item: _hash(key(item)))


def _hash(text: str) -> str:
    return hashlib.sha1(f"queries:{text}".encode()).hexdigest()


__all__ = ["KINDS", "TEXT_KINDS", "Query", "answers", "photo_queries", "text_queries"]
