"""Row-aligned metadata columns of a vector index: id map, filter masks, layout order, npz round trip."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from sveta.index.base import Filter, ItemMeta

TEXT_FIELDS = ("category", "gender", "colour", "brand", "source")
# The row order layout_order gives; an index laid out by another one is laid out again at its next save.
# 2: colour after gender, so "blue T-shirts" (hybrid search's narrowed list) is a few runs, not scattered rows.
LAYOUT = 2


def _norm(value: str) -> str:
    # filters come from people and URLs: "Red " must match the items stored as "red"
    return value.strip().casefold()


class Columns:
    """Per-row metadata of the vectors in a faiss index, row i describing faiss row i.

    Strings live as small int codes (0 = unknown) so that a Filter is a few vectorised comparisons;
    they keep their exact spelling, so ``meta`` gives back equal ItemMeta. Dead rows (removed or
    replaced vectors the index cannot delete) stay with ``alive`` False.
    """

    def __init__(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.product = np.zeros(0, np.int64)
        self.alive = np.zeros(0, bool)
        self.price = np.zeros(0, np.float64)
        self.available = np.zeros(0, bool)
        self.sha = np.zeros(0, "S1")  # the photo's sha256 (b"" for None): carried, never filtered
        self.codes = {f: np.zeros(0, np.int32) for f in TEXT_FIELDS}
        self.vocab: dict[str, list[str]] = {f: [] for f in TEXT_FIELDS}
        self._lookup: dict[str, dict[str, int]] = {f: {} for f in TEXT_FIELDS}  # exact value -> code
        self._match: dict[str, dict[str, list[int]]] = {f: {} for f in TEXT_FIELDS}  # normalised -> codes
        self._keys = np.zeros(0, np.int64)  # live ids, sorted
        self._key_rows = np.zeros(0, np.int64)
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> int:
        return len(self._keys)

    def live_ids(self) -> np.ndarray:
        return self._keys.copy()

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where the id is not live."""
        if not len(self._keys):
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, ids), len(self._keys) - 1)
        return np.where(self._keys[pos] == ids, self._key_rows[pos], -1)

    def append(self, ids: np.ndarray, meta: Sequence[ItemMeta]) -> None:
        start = len(self.ids)
        self.ids = np.concatenate([self.ids, ids])
        self.product = np.concatenate([self.product, [m.product_id for m in meta]]).astype(np.int64)
        self.alive = np.concatenate([self.alive, np.ones(len(ids), bool)])
        self.price = np.concatenate([self.price, _prices(meta)])
        self.available = np.concatenate([self.available, [bool(m.available) for m in meta]]).astype(bool)
        self.sha = np.concatenate([self.sha, _shas(meta)])
        for f in TEXT_FIELDS:
            self.codes[f] = np.concatenate([self.codes[f], self._encode(f, meta)])
        self._link(ids, np.arange(start, start + len(ids), dtype=np.int64))

    def update(self, rows: np.ndarray, meta: Sequence[ItemMeta]) -> None:
        """New metadata for live rows whose vector did not change."""
        self.product[rows] = [m.product_id for m in meta]
        self.price[rows] = _prices(meta)
        self.available[rows] = [bool(m.available) for m in meta]
        shas = _shas(meta)
        if shas.itemsize > self.sha.itemsize:
            self.sha = self.sha.astype(shas.dtype)
        self.sha[rows] = shas
        for f in TEXT_FIELDS:
            self.codes[f][rows] = self._encode(f, meta)

    def meta(self, rows: np.ndarray) -> list[ItemMeta]:
        """The ItemMeta of each row, equal to the one stored."""
        text = {f: [None, *self.vocab[f]] for f in TEXT_FIELDS}
        return [
            ItemMeta(
                product_id=int(self.product[r]),
                **{f: text[f][self.codes[f][r]] for f in TEXT_FIELDS},
                price=None if np.isnan(self.price[r]) else float(self.price[r]),
                available=bool(self.available[r]),
                sha256=self.sha[r].decode() or None,
            )
            for r in rows.tolist()
        ]

    def columns(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``meta(rows)`` as columns: product, price (NaN: none), available, sha (bytes), text fields (object, None)."""
        out = {"product": self.product[rows], "price": self.price[rows], "available": self.available[rows]}
        out["sha"] = self.sha[rows]
        for f in TEXT_FIELDS:
            out[f] = np.array([None, *self.vocab[f]], object)[self.codes[f][rows]]
        return out

    def first_per_product(self) -> tuple[np.ndarray, np.ndarray]:
        """(product ids ascending, each one's smallest live id)."""
        products, first = np.unique(self.product[self._key_rows], return_index=True)  # keys ascend: first = least
        return products, self._keys[first]

    def kill(self, rows: np.ndarray) -> None:
        rows = rows[rows >= 0]
        self.alive[rows] = False
        keep = ~np.isin(self._keys, self.ids[rows])
        self._keys, self._key_rows = self._keys[keep], self._key_rows[keep]

    def _link(self, ids: np.ndarray, rows: np.ndarray) -> None:
        # a merge into the sorted keys, not a re-sort: small upserts into a big index stay O(n) memcpy
        order = np.argsort(ids, kind="stable")
        pos = np.searchsorted(self._keys, ids[order])
        self._keys = np.insert(self._keys, pos, ids[order])
        self._key_rows = np.insert(self._key_rows, pos, rows[order])

    def _encode(self, f: str, meta: Sequence[ItemMeta]) -> np.ndarray:
        lookup, vocab = self._lookup[f], self.vocab[f]
        out = np.zeros(len(meta), np.int32)
        for i, m in enumerate(meta):
            value = getattr(m, f)
            if value is None:
                continue
            if value not in lookup:
                vocab.append(value)
                lookup[value] = len(vocab)
                self._match[f].setdefault(_norm(value), []).append(len(vocab))
            out[i] = lookup[value]
        return out

    def mask(self, flt: Filter | None) -> np.ndarray:
        """Rows a search may return: alive and matching every condition of ``flt``.

        The result is a per-thread scratch buffer, overwritten by this thread's next call: fresh
        arrays of a million rows cost more in page faults than the comparisons themselves.
        """
        mask, tmp, tmp2 = self._scratch()
        np.copyto(mask, self.alive)
        if flt is None:
            return mask
        for f in TEXT_FIELDS:
            wanted = getattr(flt, f)
            if wanted:
                codes = [c for v in wanted for c in self._match[f].get(_norm(v), [-1])]
                _any_of(self.codes[f], codes, tmp, tmp2)
                mask &= tmp
        if flt.price_min is not None:
            mask &= np.greater_equal(self.price, flt.price_min, out=tmp)
        if flt.price_max is not None:
            mask &= np.less_equal(self.price, flt.price_max, out=tmp)
        if flt.available is not None:
            mask &= np.equal(self.available, flt.available, out=tmp)
        if flt.exclude_products:
            _any_of(self.product, flt.exclude_products, tmp, tmp2)
            mask &= np.logical_not(tmp, out=tmp)
        for f, unwanted in flt.exclude.items():
            codes = [c for v in unwanted for c in self._match[f].get(_norm(v), [])] if f in TEXT_FIELDS else []
            if codes:
                _any_of(self.codes[f], codes, tmp, tmp2)
                mask &= np.logical_not(tmp, out=tmp)
        return mask

    def _scratch(self) -> list[np.ndarray]:
        buffers: list[np.ndarray] | None = getattr(self._local, "buffers", None)
        if buffers is None or len(buffers[0]) != len(self.ids):
            buffers = [np.empty(len(self.ids), bool) for _ in range(3)]
            self._local.buffers = buffers
        return buffers

    def layout_order(self) -> np.ndarray:
        """Live rows sorted by category, gender, colour, product: the common filters select contiguous memory."""
        rows = np.flatnonzero(self.alive)
        keys: list[np.ndarray] = [self.ids[rows], self.product[rows]]
        keys += [self.codes[f][rows] for f in ("colour", "gender", "category")]  # the last key sorts first
        return rows[np.lexsort(keys)]

    def take(self, rows: np.ndarray) -> Columns:
        """The columns of ``rows``, renumbered 0..len(rows)-1."""
        out = Columns()
        out.ids, out.product, out.alive = self.ids[rows], self.product[rows], self.alive[rows]
        out.price, out.available, out.sha = self.price[rows], self.available[rows], self.sha[rows]
        out.codes = {f: self.codes[f][rows] for f in TEXT_FIELDS}
        out._set_vocab(self.vocab)
        live = np.flatnonzero(out.alive)
        out._link(out.ids[live], live.astype(np.int64))
        return out

    def _set_vocab(self, vocab: Mapping[str, list[str]]) -> None:
        self.vocab = {f: list(vocab[f]) for f in TEXT_FIELDS}
        self._lookup = {f: {v: i + 1 for i, v in enumerate(self.vocab[f])} for f in TEXT_FIELDS}
        self._match = {f: {} for f in TEXT_FIELDS}
        for f in TEXT_FIELDS:
            for value, code in self._lookup[f].items():
                self._match[f].setdefault(_norm(value), []).append(code)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "ids": self.ids,
            "product": self.product,
            "alive": self.alive,
            "price": self.price,
            "available": self.available,
            "sha": self.sha,
            "vocab": np.array(json.dumps(self.vocab)),
        }
        arrays.update({f"code_{f}": self.codes[f] for f in TEXT_FIELDS})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Columns:
        """Inverse of ``to_arrays``; raises KeyError / ValueError on a damaged file."""
        out = cls()
        out.ids = np.asarray(arrays["ids"], np.int64)
        out.product = np.asarray(arrays["product"], np.int64)
        out.alive = np.asarray(arrays["alive"], bool)
        out.price = np.asarray(arrays["price"], np.float64)
        out.available = np.asarray(arrays["available"], bool)
        out.sha = np.asarray(arrays["sha"])
        if out.sha.dtype.kind != "S":
            raise ValueError(f"sha column of type {out.sha.dtype}")
        out.codes = {f: np.asarray(arrays[f"code_{f}"], np.int32) for f in TEXT_FIELDS}
        out._set_vocab(json.loads(str(arrays["vocab"])))
        n = len(out.ids)
        columns = [out.product, out.alive, out.price, out.available, out.sha, *out.codes.values()]
        if any(len(c) != n for c in columns):
            raise ValueError("metadata columns of different lengths")
        if any(c.max(initial=0) > len(out.vocab[f]) for f, c in out.codes.items()):
            raise ValueError("metadata codes outside their vocabulary")
        live = np.flatnonzero(out.alive)
        out._link(out.ids[live], live.astype(np.int64))
        if len(np.unique(out._keys)) != len(out._keys):
            raise ValueError("an id is live in two rows")
        return out


def _any_of(column: np.ndarray, values: Sequence[int], out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """out = column is any of values, without allocating a column-sized array for short lists."""
    if len(values) > 16:
        out[:] = np.isin(column, np.asarray(values, column.dtype))
        return out
    np.equal(column, values[0], out=out)
    for value in values[1:]:
        out |= np.equal(column, value, out=tmp)
    return out


def _prices(meta: Sequence[ItemMeta]) -> np.ndarray:
    return np.array([np.nan if m.price is None else m.price for m in meta], np.float64)


def _shas(meta: Sequence[ItemMeta]) -> np.ndarray:
    return np.array([(m.sha256 or "").encode() for m in meta], "S")
