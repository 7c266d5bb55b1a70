"""Each catalog product's style vector read from the index's own stored vectors: no second copy of them."""

from __future__ import annotations

import numpy as np

from sveta.index.base import VectorIndex
from sveta.index.faiss_index import FaissIndex

DOT_BLOCK = 2048  # rows gathered per block by ``dot``: ~4 MB at 461-d, in cache for the product that follows


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
        out = np.empty(len(where), np.float32)
        for start in range(0, len(where), DOT_BLOCK):
            out[start : start + DOT_BLOCK] = view[where[start : start + DOT_BLOCK]] @ vector
        return out

    def _view(self) -> np.ndarray:
        if self._index is not None and self._index.generation != self._generation:
            self._refresh()
        return self._matrix

    def _refresh(self) -> None:
        assert self._index is not None
        generation = self._index.generation
        matrix, rows = self._index.stored_view(self._image_ids)
        self._matrix, self._rows, self._generation = matrix, np.where(self._image_ids >= 0, rows, -1), generation


def _first_photos(index: VectorIndex) -> tuple[np.ndarray, np.ndarray]:
    """(product ids ascending, the smallest indexed image id of each)."""
    if isinstance(index, FaissIndex):
        return index.first_photos()
    ids = np.sort(index.ids())
    products = np.array([m.product_id for m in index.meta(ids)], np.int64)
    unique, first = np.unique(products, return_index=True)
    return unique, ids[first]
