"""The catalog as numpy columns for complete the look: outfit rules, codes, colours, prices and style vectors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from sveta.catalog.outfit_rows import AttributeRow, ProductRow, outfit_rows
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

    def rows(self, keys: Sequence[int]) -> list[int]:
        """The row of each key, -1 where it is not there: many at once."""
        wanted = np.array(keys, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, wanted), max(len(self._keys) - 1, 0))
        found = self._keys[pos] == wanted if len(self._keys) else np.zeros(len(wanted), bool)
        return np.where(found, pos, -1).tolist()

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
    vectors are rows of the index's own, see StyleVectors), about 60 bytes a product. The rows are read a batch at
    a time, so building it needs little more memory than it keeps.
    """

    def __init__(self, catalog: CatalogStore, index: VectorIndex | None) -> None:
        rules = outfit_rules()
        self.slots = _Codes()
        for slot in rules.completes:
            self.slots.code(slot)
        self.categories, self.genders, self.occasions, self.seasons = _Codes(), _Codes(), _Codes(), _Codes()
        for value in (*ADULT_GENDERS, *KID_GENDERS):
            self.genders.code(value)
        self.colour_codes = _Codes()
        codes = _Coders(self.categories, self.genders, self.colour_codes, self.occasions, self.seasons)
        read = _read_catalog(catalog, codes, {q.casefold() for q in rules.quiet_patterns})
        self.product_ids, self.category, self.gender, self.colour = read.ids, read.category, read.gender, read.colour
        self.price, self.available, self.occasion, self.season = read.price, read.available, read.occasion, read.season
        self.row_of = RowMap(self.product_ids)
        slot_of = np.array([self.slots.get(rules.slot(c or None)) for c in self.categories.values], np.int16)
        self.slot = slot_of[self.category]
        self.colour_names = Labels(self.colour_codes, self.colour)
        hue, neutral, known = ch.colour_columns(self.colour_codes.values, rules.neutral_colours)
        self.hue, self.neutral, self.colour_known = hue[self.colour], neutral[self.colour], known[self.colour]
        kid_genders = np.array([g in KID_GENDERS for g in self.genders.values], bool)
        self.kid = kid_genders[self.gender] | read.kid
        loud_colour = np.array([(c or "").casefold() == "multi" for c in self.colour_codes.values], bool)
        self.loud = loud_colour[self.colour] | read.loud_pattern
        self.occasion_match = _pair_matrix(self.occasions.values, rules.occasions)
        self.season_match = _pair_matrix(self.seasons.values, rules.seasons)
        self.vectors = StyleVectors(index, self.product_ids)
        self.has_vector = self.vectors.has

    def __len__(self) -> int:
        return len(self.product_ids)


class _Coders(NamedTuple):
    category: _Codes
    gender: _Codes
    colour: _Codes
    occasion: _Codes
    season: _Codes


@dataclass(frozen=True, slots=True)
class _Read:
    ids: np.ndarray
    category: np.ndarray
    gender: np.ndarray
    colour: np.ndarray  # the seller's colour, else the photo's
    price: np.ndarray
    available: np.ndarray
    occasion: np.ndarray
    season: np.ndarray
    kid: np.ndarray  # an attribute says Kids (a kid's gender is read from the gender column)
    loud_pattern: np.ndarray


_RANKS = {name: {origin: rank for rank, origin in enumerate(origins)} for name, origins in ORIGINS.items()}


def _read_catalog(catalog: CatalogStore, codes: _Coders, quiet: set[str]) -> _Read:
    """Products' scorer columns, and per product its best-origin occasion / season, whether its patterns (those of
    their best origin) are loud, its photo's colour, and whether an attribute says Kids."""
    with outfit_rows(catalog, ["occasion", "season", "pattern", "colour", "age_group"]) as rows:
        products = _ProductColumns(codes)
        for part in rows.products:
            products.add(part)
        ids = np.array(products.ids, np.int64)
        row_of, attributes = RowMap(ids), _AttributeColumns(len(ids), quiet)
        for batch in rows.attributes:
            attributes.add(batch, row_of.rows([r[0] for r in batch]))
    colour = np.array(products.colour, np.int32)
    for row in np.flatnonzero(colour == 0).tolist():  # no colour of its own: the photo's, when it has one
        colour[row] = codes.colour.code(attributes.image_colour[row])
    return _Read(
        ids=ids,
        category=np.array(products.category, np.int32),
        gender=np.array(products.gender, np.int16),
        colour=colour,
        price=np.array(products.price, np.float64),
        available=np.array(products.available, bool),
        occasion=codes.occasion.column(attributes.value["occasion"], np.int16),
        season=codes.season.column(attributes.value["season"], np.int16),
        kid=np.array(attributes.kid, bool),
        loud_pattern=np.array(attributes.loud, bool),
    )


class _ProductColumns:
    """The products' columns as plain lists of codes (small ints are shared objects), a batch at a time."""

    def __init__(self, codes: _Coders) -> None:
        self.codes = codes
        self.ids: list[int] = []
        self.category: list[int] = []
        self.gender: list[int] = []
        self.colour: list[int] = []  # 0: none of its own
        self.price: list[float] = []
        self.available: list[bool] = []

    def add(self, part: Sequence[ProductRow]) -> None:
        if not part:
            return
        c = self.codes
        ids, categories, genders, colours, prices, available = zip(*part, strict=True)  # by position: a row's
        self.ids += ids  # named fields are a lookup each, a million products' worth of them
        self.category += map(c.category.code, categories)
        self.gender += map(c.gender.code, genders)
        self.colour += map(c.colour.code, colours)
        self.price += [np.nan if p is None else float(p) for p in prices]
        self.available += map(bool, available)


class _AttributeColumns:
    """Per product row: the best-origin occasion and season (the first read among equals), whether the patterns of
    their best origin are loud, the photo's colour (the last read), and whether an attribute says Kids."""

    def __init__(self, n: int, quiet: set[str]) -> None:
        self.quiet = quiet
        self.rank = {name: [len(origins)] * n for name, origins in ORIGINS.items()}  # past the worst: none yet
        self.value: dict[str, list[str | None]] = {"occasion": [None] * n, "season": [None] * n}
        self.loud = [False] * n
        self.image_colour: list[str | None] = [None] * n
        self.kid = [False] * n
        self._shared: dict[str, str] = {}  # one string object per distinct value, not one per row

    def add(self, part: Sequence[AttributeRow], rows: list[int]) -> None:
        for (_, name, value, origin), row in zip(part, rows, strict=True):
            if row < 0:
                continue
            if name == "age_group":
                self.kid[row] = self.kid[row] or value == "Kids"
            elif name == "colour":
                if origin == "image":  # the photo-predicted colour, for a product with none of its own
                    self.image_colour[row] = self._shared.setdefault(value, value)
            elif (rank := _RANKS[name].get(origin)) is not None:
                self._better(name, row, rank, value)

    def _better(self, name: str, row: int, rank: int, value: str) -> None:
        best = self.rank[name]
        if name == "pattern":
            loud = value.casefold() not in self.quiet
            if rank < best[row]:
                best[row], self.loud[row] = rank, loud
            elif rank == best[row]:
                self.loud[row] = self.loud[row] or loud
        elif rank < best[row]:
            best[row], self.value[name][row] = rank, self._shared.setdefault(value, value)
