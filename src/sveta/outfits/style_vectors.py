"""Each catalog product's style vector read from the index's own stored vectors: no second copy of them."""

from __future__ import annotations

import numpy as np

from sveta.index.base import VectorIndex
from sveta.index.faiss_index import FaissIndex

DOT_BLOCK = 2048  # rows gathered per block by ``dot``: ~4 MB at 461-d, in cache for the product that follows
# ``dot`` over many rows reads runs of the stored rows in place: gathering copies each row first, and at a million
# products (~400,000 candidates of the completing slots) that copy was most of `complete`'s time
SPAN_FROM = 4096  # rows: fewer are gathered (marking the rows costs a pass over every stored row)
MIN_SPAN = 64  # stored rows: a shorter run is gathered (a product per run costs about as much as 64 rows' reads)
MAX_GAP = 8  # stored rows: runs closer than this are read as one (the rows between are read and not used)


class StyleVectors:
    """Product row -> its first indexed photo's stored vector (zeros without one), shaped (products, dim).

    On FAISS the rows are a zero-copy view of the index's vectors (a million 461-d products would otherwise hold
    1.8 GB twice), looked up again if that index changes in this process; another backend's are copied once.
    Indexing gives float32 arrays, and ``self @ vector`` every product's dot product with ``vector``.
    """

    def __init__(self, index: VectorIndex | None, product_ids: np.ndarray) -> None:
        n = len(product_ids)
        self._image_ids = np.full(n, -1, np.int64)
        self._index = index if isinstance(index, FaissIndex) else None
        self._generation = -1
        self._rows = np.full(n, -1, np.int64)
        self._matrix = np.zeros((1, 1), np.float32)  # no vectors: every row reads as a 1-d zero
        if index is None or not len(index):
            return
        products, image_ids = _first_photos(index)
        pos = np.minimum(np.searchsorted(product_ids, products), max(n - 1, 0))
        ours = product_ids[pos] == products if n else np.zeros(len(products), bool)
        self._image_ids[pos[ours]] = image_ids[ours]
        if self._index is None:  # a remote index: its vectors, copied once, in product order
            self._matrix = np.zeros((n, index.config.dim), np.float32)
            self._matrix[pos[ours]] = index.vectors(image_ids[ours])
            self._rows[pos[ours]] = pos[ours]
        else:
            self._refresh()

    @property
    def has(self) -> np.ndarray:
        """Which product rows have a vector."""
        return self._image_ids >= 0

    @property
    def shape(self) -> tuple[int, int]:
        return len(self._rows), self._view().shape[1]

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, rows: int | list[int] | np.ndarray) -> np.ndarray:
        view = self._view()  # first: it may look the rows up again
        where = self._rows[rows]
        out = np.array(view[np.maximum(where, 0)], np.float32)  # a copy: the view is the index's memory
        out[where < 0] = 0.0
        return out

    def __matmul__(self, vector: np.ndarray) -> np.ndarray:
        """Every product's dot product with ``vector`` (0 without a vector of its own)."""
        stored = self._view() @ np.asarray(vector, np.float32)  # first: it may look the rows up again
        return np.where(self._rows >= 0, stored[np.maximum(self._rows, 0)], 0.0).astype(np.float32)

    def dot(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The dot products of ``rows`` (rows with a vector) with ``vector``: only their memory is read, a block
        at a time (a cache-sized copy), where ``self @ vector`` reads every stored vector."""
        view, where = self._view(), self._rows[rows]  # the view first: it may look the rows up again
        vector = np.asarray(vector, np.float32)
        if len(where) < SPAN_FROM:
            return _gathered(view, where, vector)
        marked = np.zeros(len(view), bool)
        marked[where] = True
        starts, stops = _spans(marked)
        wide = stops - starts >= MIN_SPAN
        full = np.empty(len(view), np.float32)
        for start, stop in zip(starts[wide].tolist(), stops[wide].tolist(), strict=True):
            full[start:stop] = view[start:stop] @ vector  # in place, in order: no copy
        narrow = _rows_in(starts[~wide], stops[~wide])
        narrow = narrow[marked[narrow]]
        full[narrow] = _gathered(view, narrow, vector)
        return full[where]

    def _view(self) -> np.ndarray:
        if self._index is not None and self._index.generation != self._generation:
            self._refresh()
        return self._matrix

    def _refresh(self) -> None:
        assert self._index is not None
        generation = self._index.generation
        matrix, rows = self._index.stored_view(self._image_ids)
        self._matrix, self._rows, self._generation = matrix, np.where(self._image_ids >= 0, rows, -1), generation


def _gathered(view: np.ndarray, where: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """The dot products of the stored rows ``where``, copied a cache-sized block at a time."""
    out = np.empty(len(where), np.float32)
    for start in range(0, len(where), DOT_BLOCK):
        out[start : start + DOT_BLOCK] = view[where[start : start + DOT_BLOCK]] @ vector
    return out


def _spans(marked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) of the runs of marked rows, runs at most MAX_GAP rows apart joined into one."""
    edges = np.diff(marked.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not len(starts):
        return starts, stops
    apart = starts[1:] - stops[:-1] > MAX_GAP
    return starts[np.concatenate(([True], apart))], np.concatenate((stops[:-1][apart], stops[-1:]))


def _rows_in(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Every row of the runs [start, stop), in order."""
    lengths = stops - starts
    before = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else lengths
    return np.arange(int(lengths.sum())) + np.repeat(starts - before, lengths)


def _first_photos(index: VectorIndex) -> tuple[np.ndarray, np.ndarray]:
    """(product ids ascending, the smallest indexed image id of each)."""
    if isinstance(index, FaissIndex):
        return index.first_photos()
    ids = np.sort(index.ids())
    products = np.array([m.product_id for m in index.meta(ids)], np.int64)
    unique, first = np.unique(products, return_index=True)
    return unique, ids[first]
