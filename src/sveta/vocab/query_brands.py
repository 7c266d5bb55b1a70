"""The catalog's brands in a query's words: case- and accent-insensitive, one typo allowed in long names."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from sveta.vocab.attributes import phrase_key
from sveta.vocab.query_words import fold_accents

MAX_BRAND_WORDS = 5  # "United Colors of Benetton", "The Indian Garage Co"
# Under 5 letters one edit turns a brand into another word ("nkie" is not Nike, "lee" not "leo"): exact only.
MIN_FUZZY_LETTERS = 5
MIN_WORD_LETTERS = 2  # a one-letter word ("w", the "s" of "men's") is never a brand on its own


@dataclass(frozen=True, slots=True)
class BrandIndex:
    """Brand keys (casefolded, accentless, words joined) -> the brand as the catalog spells it."""

    exact: dict[str, str]
    near: dict[str, tuple[str, ...]]  # each long key and its one-letter deletions -> the keys they come from


@dataclass(frozen=True, slots=True)
class BrandHit:
    brand: str
    start: int  # token indices, end exclusive
    end: int


def brand_index(brands: Collection[str]) -> BrandIndex:
    """The index of a brand list; built once per distinct list (a catalog's list rarely changes)."""
    return _index(tuple(brands))


@functools.lru_cache(maxsize=8)
def _index(brands: tuple[str, ...]) -> BrandIndex:
    exact: dict[str, str] = {}
    for brand in brands:
        key = phrase_key(fold_accents(str(brand)))
        if key and not key.isdigit():
            exact.setdefault(key, brand)  # two spellings of one name ("Levis", "Levi's"): the first listed
    near: dict[str, list[str]] = {}
    for key in exact:
        if len(key) >= MIN_FUZZY_LETTERS:
            for variant in _deletions(key) | {key}:
                near.setdefault(variant, []).append(key)
    return BrandIndex(exact, {k: tuple(v) for k, v in near.items()})


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def exact_brands(
    words: Sequence[str], index: BrandIndex, allowed: Collection[int], reserved: Collection[str]
) -> list[BrandHit]:
    """Brand names spelled out, leftmost-longest over the allowed words; a lone query word ("new", "under",
    "red" as a title's first word) is not a brand, though a longer name may hold one ("New Balance")."""

    def find(key: str, size: int) -> str | None:
        lone = size == 1 and (key in reserved or len(key) < MIN_WORD_LETTERS)
        return None if lone else index.exact.get(key)

    return _scan(words, allowed, find)


def fuzzy_brands(words: Sequence[str], index: BrandIndex, allowed: Collection[int]) -> list[BrandHit]:
    """Brand names with one typo (an extra, missing, wrong or swapped letter) among words nothing else read;
    the first letter must be right, as it nearly always is ("addidas" is Adidas, "turban" no Urban)."""

    def find(key: str, size: int) -> str | None:
        if len(key) < MIN_FUZZY_LETTERS - 1 or key.isdigit():
            return None
        found = {k for v in _deletions(key) | {key} for k in index.near.get(v, ()) if _one_edit(key, k)}
        return index.exact[min(found)] if found else None

    return _scan(words, allowed, find)


def _scan(words: Sequence[str], allowed: Collection[int], find: Callable[[str, int], str | None]) -> list[BrandHit]:
    hits: list[BrandHit] = []
    i = 0
    while i < len(words):
        found = ((end, find("".join(words[i:end]), end - i)) for end in _window_ends(words, i, allowed))
        end, brand = next(((end, brand) for end, brand in found if brand is not None), (i + 1, None))
        if brand is not None:
            hits.append(BrandHit(brand, i, end))
        i = end
    return hits


def _window_ends(words: Sequence[str], start: int, allowed: Collection[int]) -> list[int]:
    """Ends of the windows from `start` over allowed words, longest first."""
    end = start
    while end < len(words) and end - start < MAX_BRAND_WORDS and end in allowed:
        end += 1
    return list(range(end, start, -1))


def _one_edit(a: str, b: str) -> bool:
    """Whether b is a with one letter inserted, deleted, replaced, or two neighbours swapped; same first letter."""
    if a[:1] != b[:1] or abs(len(a) - len(b)) > 1:
        return False
    if len(a) != len(b):
        short, long = sorted((a, b), key=len)
        i = next((i for i, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
        return short[i:] == long[i + 1 :]
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    return len(diff) == 1 or swapped
