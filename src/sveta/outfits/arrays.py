"""The catalog as numpy columns for complete the look: outfit rules, codes, colours, prices and style vectors."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from sveta.catalog.outfit_rows import ProductRow, outfit_rows
from sveta.catalog.store import CatalogStore
from sveta.index.base import VectorIndex
from sveta.outfits.style_vectors import StyleVectors
from sveta.vocab import colour_harmony as ch
from sveta.vocab.outfit_rules import ADULT_GENDERS, KID_GENDERS, outfit_rules

# Where an attribute's value is read from, best first (a seller's own label beats words, words beat the photo).
ORIGINS = {"occasion": ("seller", "text", "image"), "season": ("seller", "text"), "pattern": ("text", "image")}


def _pair_matrix(values: list[str], spec: dict[str, Any]) -> np.ndarray:
    """Code x code agreement (code 0 = unknown); values[0] is the unknown placeholder."""
    n = len(values)
    m = np.full((n, n), float(spec["other"]), np.float32)
    np.fill_diagonal(m, 1.0)
    index = {v: i for i, v in enumerate(values)}
    for a, b, score in spec.get("pairs", []):
        if a in index and b in index:
            m[index[a], index[b]] = m[index[b], index[a]] = float(score)
    m[0, :] = m[:, 0] = float(spec["unknown"])
    return m


class _Codes:
    """Strings as small int codes, 0 meaning unknown."""

    def __init__(self) -> None:
        self.values: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def code(self, value: str | None) -> int:
        key = value or ""
        if key not in self._index:
            self._index[key] = len(self.values)
            self.values.append(key)
        return self._index[key]

    def get(self, value: str | None) -> int:
        return self._index.get(value or "", 0)

    def column(self, values: Iterable[str | None], dtype: type[np.integer[Any]]) -> np.ndarray:
        """The codes of ``values`` as one numpy column."""
        code = self.code
        return np.array([code(v) for v in values], dtype)


class RowMap(Mapping[int, int]):
    """Product id -> row, over the sorted id column: a dict of a million ints would take ~100 MB."""

    def __init__(self, keys: np.ndarray) -> None:
        self._keys = keys

    def __getitem__(self, key: int) -> int:
        pos = int(np.searchsorted(self._keys, key))
        if pos >= len(self._keys) or self._keys[pos] != key:
            raise KeyError(key)
        return pos

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys.tolist())

    def __len__(self) -> int:
        return len(self._keys)


class Labels:
    """A coded column read as its strings: ``labels[row]`` is the row's value, None where unknown."""

    def __init__(self, codes: _Codes, column: np.ndarray) -> None:
        self._codes, self._column = codes, column

    def __getitem__(self, row: int) -> str | None:
        return self._codes.values[self._column[row]] or None

    def __len__(self) -> int:
        return len(self._column)


class CatalogArrays:
    """One row per catalogued product: codes, colours, prices and style vectors as numpy columns.

    Built once per index version, outside any lock a request waits on; what it keeps is numpy only (the style
    vectors are rows of the index's own, see StyleVectors), about 60 bytes a product.
    """

    def __init__(self, catalog: CatalogStore, index: VectorIndex | None) -> None:
        rules = outfit_rules()
        products, attrs = _read_catalog(catalog)
        ids, categories, genders, colours, prices, available = zip(*products, strict=True) if products else [()] * 6
        self.product_ids = np.array(ids, np.int64)
        self.row_of = RowMap(self.product_ids)
        self.slots = _Codes()
        for slot in rules.completes:
            self.slots.code(slot)
        self.categories, self.genders, self.occasions, self.seasons = _Codes(), _Codes(), _Codes(), _Codes()
        for value in (*ADULT_GENDERS, *KID_GENDERS):
            self.genders.code(value)
        self.category = self.categories.column(categories, np.int32)
        slot_of = np.array([self.slots.get(rules.slot(c or None)) for c in self.categories.values], np.int16)
        self.slot = slot_of[self.category]
        self.gender = self.genders.column(genders, np.int16)
        image_colour = attrs["colour"]
        self.colour_codes = _Codes()
        self.colour = self.colour_codes.column(
            [c or image_colour.get(pid) for pid, c in zip(ids, colours, strict=True)], np.int32
        )
        self.colour_names = Labels(self.colour_codes, self.colour)
        hue, neutral, known = ch.colour_columns(self.colour_codes.values, rules.neutral_colours)
        self.hue, self.neutral, self.colour_known = hue[self.colour], neutral[self.colour], known[self.colour]
        self.price = np.array([np.nan if p is None else p for p in prices], np.float64)
        self.available = np.array(available, bool)
        self.occasion = self.occasions.column([attrs["occasion"].get(pid) for pid in ids], np.int16)
        self.season = self.seasons.column([attrs["season"].get(pid) for pid in ids], np.int16)
        kids, kid_genders = attrs["kids"], set(KID_GENDERS)
        self.kid = np.array([g in kid_genders or pid in kids for pid, g in zip(ids, genders, strict=True)], bool)
        quiet = {q.casefold() for q in rules.quiet_patterns}
        patterns = attrs["patterns"]
        loud_colour = np.array([(c or "").casefold() == "multi" for c in self.colour_codes.values], bool)
        self.loud = loud_colour[self.colour] | np.array([_loud(patterns.get(pid), quiet) for pid in ids], bool)
        self.occasion_match = _pair_matrix(self.occasions.values, rules.occasions)
        self.season_match = _pair_matrix(self.seasons.values, rules.seasons)
        self.vectors = StyleVectors(index, self.product_ids)
        self.has_vector = self.vectors.has

    def __len__(self) -> int:
        return len(self.product_ids)


def _loud(patterns: set[str] | None, quiet: set[str]) -> bool:
    return bool(patterns) and any(p.casefold() not in quiet for p in patterns or ())


def _read_catalog(catalog: CatalogStore) -> tuple[list[ProductRow], dict[str, Any]]:
    """Products' scorer columns, and per product its best-origin occasion / season, patterns, image colour, kids."""
    products, rows = outfit_rows(catalog, ["occasion", "season", "pattern", "colour", "age_group"])
    best: dict[str, dict[int, tuple[int, str]]] = defaultdict(dict)
    patterns: dict[int, dict[int, set[str]]] = defaultdict(dict)
    colour: dict[int, str] = {}
    kids: set[int] = set()
    for pid, name, value, origin in rows:
        if name == "age_group":
            kids.update([pid] if value == "Kids" else [])
        elif name == "colour":
            if origin == "image":  # the photo-predicted colour, when the product has none of its own
                colour[pid] = value
        elif name == "pattern":
            if origin in ORIGINS["pattern"]:
                patterns[pid].setdefault(ORIGINS["pattern"].index(origin), set()).add(value)
        elif origin in ORIGINS[name]:
            rank = ORIGINS[name].index(origin)
            if pid not in best[name] or rank < best[name][pid][0]:
                best[name][pid] = (rank, value)
    return products, {
        "occasion": {pid: v for pid, (_, v) in best["occasion"].items()},
        "season": {pid: v for pid, (_, v) in best["season"].items()},
        "patterns": {pid: by_rank[min(by_rank)] for pid, by_rank in patterns.items()},
        "colour": colour,
        "kids": kids,
    }
