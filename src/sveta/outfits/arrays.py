"""The catalog as numpy columns for complete the look: outfit rules, codes, colours, prices and style vectors."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from sveta.catalog.outfit_rows import ProductRow, outfit_rows
from sveta.catalog.store import CatalogStore
from sveta.index.base import VectorIndex
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


class CatalogArrays:
    """One row per indexed or catalogued product: codes, colours, prices and style vectors as numpy columns."""

    def __init__(self, catalog: CatalogStore, index: VectorIndex | None) -> None:
        rules = outfit_rules()
        products, attrs = _read_catalog(catalog)
        self.product_ids = np.array([p[0] for p in products], np.int64)
        self.row_of = {int(pid): i for i, pid in enumerate(self.product_ids)}
        self.slots = _Codes()
        for slot in rules.completes:
            self.slots.code(slot)
        self.categories, self.genders, self.occasions, self.seasons = _Codes(), _Codes(), _Codes(), _Codes()
        for value in (*ADULT_GENDERS, *KID_GENDERS):
            self.genders.code(value)
        self.category = np.array([self.categories.code(p[1]) for p in products], np.int32)
        self.slot = np.array([self.slots.get(rules.slot(p[1])) for p in products], np.int16)
        self.gender = np.array([self.genders.code(p[2]) for p in products], np.int16)
        self.colour_names = [p[3] or attrs["colour"].get(p[0]) for p in products]
        self.colour_codes = _Codes()
        self.colour = np.array([self.colour_codes.code(c) for c in self.colour_names], np.int32)
        self.hue, self.neutral, self.colour_known = ch.colour_columns(self.colour_names, rules.neutral_colours)
        self.price = np.array([np.nan if p[4] is None else p[4] for p in products], np.float64)
        self.available = np.array([bool(p[5]) for p in products], bool)
        self.occasion = np.array([self.occasions.code(attrs["occasion"].get(p[0])) for p in products], np.int16)
        self.season = np.array([self.seasons.code(attrs["season"].get(p[0])) for p in products], np.int16)
        kids = set(KID_GENDERS)
        self.kid = np.array([p[2] in kids or p[0] in attrs["kids"] for p in products], bool)
        quiet = {q.casefold() for q in rules.quiet_patterns}
        patterns = attrs["patterns"]
        self.loud = np.array(
            [_loud(patterns.get(p[0]), c, quiet) for p, c in zip(products, self.colour_names, strict=True)], bool
        )
        self.occasion_match = _pair_matrix(self.occasions.values, rules.occasions)
        self.season_match = _pair_matrix(self.seasons.values, rules.seasons)
        self.vectors, self.has_vector = _vectors(index, self.row_of, len(products))

    def __len__(self) -> int:
        return len(self.product_ids)


def _loud(patterns: set[str] | None, colour: str | None, quiet: set[str]) -> bool:
    if (colour or "").casefold() == "multi":
        return True
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


def _vectors(index: VectorIndex | None, row_of: dict[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each product's style vector: its first indexed photo's stored vector (zeros without one)."""
    if index is None or not len(index):
        return np.zeros((n, 1), np.float32), np.zeros(n, bool)
    ids = np.sort(index.ids())
    first: dict[int, int] = {}
    for image_id, meta in zip(ids.tolist(), index.meta(ids), strict=True):
        first.setdefault(meta.product_id, image_id)
    keep = [(row_of[pid], image_id) for pid, image_id in first.items() if pid in row_of]
    out = np.zeros((n, index.config.dim), np.float32)
    has = np.zeros(n, bool)
    if keep:
        rows = np.array([r for r, _ in keep], np.int64)
        out[rows] = index.vectors(np.array([i for _, i in keep], np.int64))
        has[rows] = True
    return out, has
