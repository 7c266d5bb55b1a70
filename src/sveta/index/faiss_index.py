"""The embedded FAISS index: exact or HNSW, filters applied inside the search, versions saved atomically."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.errors import ConfigError
from sveta.index.base import Filter, Hit, IndexConfig, ItemMeta, unit_vectors
from sveta.index.base import as_ids as _as_ids
from sveta.index.faiss_files import FILES, Live, laid_out, read_live, write_live
from sveta.index.meta import Columns
from sveta.index.versions import CURRENT, DISCARDED, HINT, has_versions, read_current, save_version

if TYPE_CHECKING:
    from sveta.settings import Settings

log = logging.getLogger(__name__)

# Filtered queries on HNSW. The walk needs efSearch ~ ef_search / selectivity to keep recall@10 >= 0.95
# when the filter excludes the query's neighbourhood (1M real-like vectors, benchmarks/bench_index.py).
# Its cost, in units of one contiguous row read (~0.11 us at 1,344-d): ~25 per unit of ef; an exact scan
# of the allowed rows costs 1 per row plus 6 per 8-row block touched (scattered rows are 3-5x slower than
# a category's contiguous run). The exact scan loses nothing, so it is kept until the walk is 2x cheaper.
EXACT_ROW_COST, EXACT_BLOCK_COST, HNSW_EF_COST, EXACT_PREFERENCE = 1, 6, 25, 2
REORGANISE_FRACTION = 0.2  # dead or out-of-layout rows that trigger a rebuild on save
AUTO_DOWN = 0.9  # auto drops back to flat only below 90% of the threshold: no flapping at the border
MAX_EF = 4096
SAME_VECTOR = 1e-6  # per coordinate: a vector this close to the stored one is the same vector
DROP_AFTER = 64  # up to this many excluded products are dropped from the hits instead of masked
MAX_RUNS = 32  # contiguous runs of allowed rows scanned as slices; more: a row-by-row ID selector


class FaissIndex:
    """VectorIndex over faiss: flat (exact) or HNSW, cosine (inner product) or L1.

    Removed or replaced vectors stay as dead rows masked out of every search until a save compacts
    them. ``upsert``/``remove`` must not run concurrently with ``search`` in one process; readers in
    other processes see the old version until ``save`` switches CURRENT.
    """

    def __init__(self, path: Path, config: IndexConfig, settings: Settings, live: Live | None = None) -> None:
        self.faiss = require("faiss", None)
        self.path = Path(path)
        self.config = config
        self.settings = settings
        self._live = live or Live(self._new_index(config.kind, config.metric), Columns())
        self._max_threads = settings.index_threads or os.cpu_count() or 1
        self._lock = threading.RLock()
        self._dirty = live is None
        self._vectors_changed = live is None  # else a save writes only new metadata beside the same vectors
        self._generation = 0  # bumped whenever stored rows may move or be reallocated (see stored_view)

    def __len__(self) -> int:
        return self._live.cols.live

    @property
    def version(self) -> str | None:
        return self._live.version

    def ids(self) -> np.ndarray:
        return self._live.cols.live_ids()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` (KeyError naming the ids that are not in the index)."""
        live, ids = self._live, _as_ids(ids)
        rows = live.cols.rows_of(ids)
        if (rows < 0).any():
            raise KeyError(f"not in the index: {ids[rows < 0][:10].tolist()}")
        return self._xb(live.index)[rows]

    def meta(self, ids: np.ndarray) -> list[ItemMeta]:
        """Stored metadata of ``ids``, equal to what was upserted (KeyError as ``vectors``)."""
        live, ids = self._live, _as_ids(ids)
        rows = live.cols.rows_of(ids)
        if (rows < 0).any():
            raise KeyError(f"not in the index: {ids[rows < 0][:10].tolist()}")
        return live.cols.meta(rows)

    def meta_columns(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The metadata of ``ids`` as columns (``Columns.columns``), for comparing a whole catalog at once."""
        live, ids = self._live, _as_ids(ids)
        rows = live.cols.rows_of(ids)
        if (rows < 0).any():
            raise KeyError(f"not in the index: {ids[rows < 0][:10].tolist()}")
        return live.cols.columns(rows)

    def first_photos(self) -> tuple[np.ndarray, np.ndarray]:
        """(product ids ascending, the smallest live image id of each): a product's first indexed photo."""
        return self._live.cols.first_per_product()

    @property
    def generation(self) -> int:
        return self._generation

    def stored_view(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(all stored vectors as a read-only zero-copy view, the row of each id, -1 where not live).

        The view is valid while ``generation`` stays the same: any upsert, removal, save or reload in this
        process may move or free the rows (the serving engines never change their index).
        """
        live = self._live
        xb = self._xb(live.index)
        xb.flags.writeable = False
        return xb, live.cols.rows_of(_as_ids(ids))

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, meta: Sequence[ItemMeta]) -> None:
        ids, vectors = _as_ids(ids), self._as_vectors(vectors)
        if not len(ids) == len(vectors) == len(meta):
            raise ValueError(f"{len(ids)} ids, {len(vectors)} vectors and {len(meta)} metadata do not match")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("an id appears twice in one upsert")
        with self._lock:
            cols, index = self._live.cols, self._live.index
            rows = cols.rows_of(ids)
            old = rows >= 0
            same = np.zeros(len(ids), bool)
            # a metadata-only change (price, stock) keeps its row: HNSW cannot delete, so don't grow it. Within a
            # rounding: a stored vector given back is normalised again, which moves a third of them by an ulp
            same[old] = (np.abs(self._xb(index)[rows[old]] - vectors[old]) <= SAME_VECTOR).all(axis=1)
            cols.update(rows[same], [meta[i] for i in np.flatnonzero(same)])
            cols.kill(rows[old & ~same])
            if (~same).any():
                self._vectors_changed = True
                self._threads(len(vectors))
                index.add(vectors[~same])
                cols.append(ids[~same], [meta[i] for i in np.flatnonzero(~same)])
            self._changed()

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            self._live.cols.kill(self._live.cols.rows_of(_as_ids(ids)))
            self._changed()

    def _changed(self) -> None:
        self.config.count = self._live.cols.live
        self._dirty = True
        self._generation += 1

    # -- search ------------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, flt: Filter | None = None, *, distinct_products: bool = True
    ) -> list[list[Hit]]:
        """Top ``k`` per query among the rows ``flt`` allows; k hits whenever k allowed items exist."""
        live, q = self._live, self._as_vectors(queries, what="queries")
        # a few excluded products (similar's own) are dropped from the hits, not masked: masking them is three
        # passes over every row per request, and without them the search often needs no row selector at all
        drop = np.zeros(0, np.int64)
        if flt is not None and 0 < len(flt.exclude_products) <= DROP_AFTER:
            drop, flt = np.asarray(flt.exclude_products, np.int64), replace(flt, exclude_products=[])
        mask = live.cols.mask(flt)
        allowed = int(np.count_nonzero(mask))
        results: list[list[Hit]] = [[] for _ in range(len(q))]
        if k <= 0 or allowed == 0:
            return results
        # several images per product: fetch more than k so that k distinct products survive
        fetch = min(allowed, k * 4 if distinct_products else k)
        todo = np.arange(len(q))
        while len(todo):
            scores, rows = self._search_rows(live, q[todo], fetch, mask, allowed)
            pending = []
            for i, s, r in zip(todo, scores, rows, strict=True):
                results[i] = self._hits(live.cols, s, r, k, distinct_products, drop)
                if len(results[i]) < k and fetch < allowed:
                    pending.append(i)
            todo, fetch = np.asarray(pending, np.int64), min(allowed, fetch * 4)
        return results

    def _hits(
        self, cols: Columns, scores: np.ndarray, rows: np.ndarray, k: int, distinct: bool, drop: np.ndarray
    ) -> list[Hit]:
        keep = np.flatnonzero(rows >= 0)
        if len(drop):
            keep = keep[~np.isin(cols.product[rows[keep]], drop)]
        if distinct:
            _, first = np.unique(cols.product[rows[keep]], return_index=True)
            keep = keep[np.sort(first)]
        keep = keep[:k]
        sign = 1.0 if self.config.metric == "cosine" else -1.0  # L1: a distance, higher score is better
        return [
            Hit(int(cols.ids[r]), int(cols.product[r]), sign * float(s))
            for r, s in zip(rows[keep], scores[keep], strict=True)
        ]

    def _search_rows(
        self, live: Live, q: np.ndarray, fetch: int, mask: np.ndarray, allowed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best ``fetch`` allowed rows per query, -1 rows only when fewer exist."""
        index, faiss = live.index, self.faiss
        bits = None if allowed == len(mask) else np.packbits(mask, bitorder="little")  # alive while sel is used
        sel = None if bits is None else faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        if not isinstance(index, faiss.IndexHNSW):
            return self._exact(index, q, fetch, mask, sel)
        ef = max(fetch, min(MAX_EF, max(self.settings.hnsw_ef_search, fetch) * len(mask) // allowed))
        exact_cost = EXACT_ROW_COST * allowed
        if bits is not None:
            exact_cost += EXACT_BLOCK_COST * int(np.count_nonzero(bits))
            if exact_cost < EXACT_PREFERENCE * HNSW_EF_COST * ef:
                return self._exact(index, q, fetch, mask, sel)
        scores, rows = self._ann(index, q, fetch, sel, ef)
        short = (rows >= 0).sum(axis=1) < min(fetch, allowed)
        # a short walk (a neighbourhood of near-copies it cannot leave) widens, but only while the wider walk is
        # cheaper than the scan: four walks up to MAX_EF and then the scan cost 4x the scan alone
        while short.any() and ef < MAX_EF and HNSW_EF_COST * min(MAX_EF, ef * 4) < exact_cost:
            ef = min(MAX_EF, ef * 4)
            scores[short], rows[short] = self._ann(index, q[short], fetch, sel, ef)
            short = (rows >= 0).sum(axis=1) < min(fetch, allowed)
        if short.any():  # the walk cannot reach enough allowed rows: scan them all
            scores[short], rows[short] = self._exact(index, q[short], fetch, mask, sel)
        return scores, rows

    def _threads(self, n: int) -> None:
        """One OpenMP thread for one query: splitting a single scan over threads is 3-5x slower as soon as
        the cores are busy (threads wait a scheduler tick at the barrier). The setting is per calling thread."""
        self.faiss.omp_set_num_threads(1 if n == 1 else self._max_threads)

    def _exact(self, index: Any, q: np.ndarray, fetch: int, mask: np.ndarray, sel: Any) -> tuple[Any, Any]:
        """Exact top ``fetch`` of the allowed rows (``fetch`` <= their number)."""
        self._threads(len(q))
        runs = [(0, len(mask))] if sel is None else _runs(mask)
        if runs is None:  # scattered rows: faiss skips the others row by row
            return self._flat(index).search(q, fetch, params=self.faiss.SearchParameters(sel=sel))
        # contiguous runs (a category, thanks to the layout): the batched kernel on zero-copy slices, 2-3x faster
        xb, ip = self._xb(index), self.config.metric == "cosine"
        metric = self.faiss.METRIC_INNER_PRODUCT if ip else self.faiss.METRIC_L1
        parts = [self.faiss.knn(q, xb[a:b], min(fetch, b - a), metric=metric) for a, b in runs]
        scores = np.concatenate([d for d, _ in parts], axis=1)
        rows = np.concatenate([i + a for (_, i), (a, _) in zip(parts, runs, strict=True)], axis=1)
        if len(runs) > 1:
            best = np.argsort(-scores if ip else scores, axis=1, kind="stable")[:, :fetch]
            scores, rows = np.take_along_axis(scores, best, 1), np.take_along_axis(rows, best, 1)
        return scores, rows

    def _ann(self, index: Any, q: np.ndarray, fetch: int, sel: Any, ef: int) -> tuple[np.ndarray, np.ndarray]:
        params = self.faiss.SearchParametersHNSW(efSearch=ef)
        if sel is not None:
            params.sel = sel
        self._threads(len(q))
        scores, rows = index.search(q, fetch, params=params)
        return scores, rows

    # -- layout ------------------------------------------------------------------------------------

    def _flat(self, index: Any) -> Any:
        return self.faiss.downcast_index(index.storage) if isinstance(index, self.faiss.IndexHNSW) else index

    def _xb(self, index: Any) -> np.ndarray:
        """Zero-copy view of the stored vectors; valid until the index next changes."""
        flat = self._flat(index)
        if flat.ntotal == 0:
            return np.zeros((0, flat.d), np.float32)
        return self.faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)

    def _new_index(self, kind: str, metric: str) -> Any:
        faiss = self.faiss
        if kind == "flat":
            return (
                faiss.IndexFlatIP(self.config.dim)
                if metric == "cosine"
                else faiss.IndexFlat(self.config.dim, faiss.METRIC_L1)
            )
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L1
        index = faiss.IndexHNSWFlat(self.config.dim, self.settings.hnsw_m, faiss_metric)
        index.hnsw.efConstruction = self.settings.hnsw_ef_construction
        return index

    def _target_kind(self) -> str:
        if self.settings.index_kind != "auto":
            return self.settings.index_kind
        threshold = self.settings.index_hnsw_threshold
        if self.config.kind == "hnsw":
            return "hnsw" if len(self) >= AUTO_DOWN * threshold else "flat"
        return "hnsw" if len(self) > threshold else "flat"

    def _reorganise(self) -> None:
        """Compact dead rows, switch kind, or lay rows out again when enough has changed (or the layout did)."""
        live, kind = self._live, self._target_kind()
        rows = len(live.cols)
        dead, unsorted = rows - live.cols.live, rows - live.sorted_rows
        if kind != self.config.kind or dead > REORGANISE_FRACTION * rows or (kind == "flat" and dead):
            self._rebuild(kind)
        elif unsorted > REORGANISE_FRACTION * rows:
            self._rebuild(kind) if kind == "flat" else self._permute_to_layout()

    def _rebuild(self, kind: str) -> None:
        """A fresh index of the live rows (flat: a copy, HNSW: a new graph), then in layout order."""
        started, live = time.monotonic(), self._live
        # HNSW: insert in catalog order and permute afterwards; inserting sorted clusters degrades the graph
        rows = np.flatnonzero(live.cols.alive) if kind == "hnsw" else live.cols.layout_order()
        xb, index = self._xb(live.index), self._new_index(kind, self.config.metric)
        self._threads(self._max_threads)
        for start in range(0, len(rows), 100_000):
            index.add(np.ascontiguousarray(xb[rows[start : start + 100_000]]))
        self._live = Live(index, live.cols.take(rows), live.version, 0 if kind == "hnsw" else len(rows))
        self.config.kind = kind
        self._vectors_changed, self._generation = True, self._generation + 1
        del xb, live  # frees the old index before the permutation copies the new one
        if kind == "hnsw":
            self._permute_to_layout()
        log.info("rebuilt the %s index of %d vectors in %.1f s", kind, len(rows), time.monotonic() - started)

    def _permute_to_layout(self) -> None:
        """Rows in layout order (category, gender, colour, product): the common filters scan contiguous memory."""
        live = self._live
        order = np.concatenate([live.cols.layout_order(), np.flatnonzero(~live.cols.alive)])  # dead last
        if len(order):
            live.index.permute_entries(order)
        self._live = Live(live.index, live.cols.take(order), live.version, len(order))
        self._vectors_changed, self._generation = True, self._generation + 1

    # -- persistence -------------------------------------------------------------------------------

    def save(self) -> None:
        """Write a complete new version beside the live one, then switch CURRENT to it in one rename.

        When only metadata changed (prices, stock, removals that leave dead rows), the new version links the
        live version's vector file instead of writing it again: gigabytes at scale, for a 1% reprice.
        """
        with self._lock:
            current = laid_out(self.config)  # else an older sveta's order: lay the rows out again
            if not self._dirty and self._live.version and self._target_kind() == self.config.kind and current:
                return  # nothing to write: saving is gigabytes at scale
            self._reorganise()
            live = self._live
            same = None if self._vectors_changed or live.version is None else self.path / live.version
            live.version = save_version(self.path, lambda folder: write_live(live, self.config, folder, same), FILES)
            self._dirty = self._vectors_changed = False

    def reload_if_changed(self) -> bool:
        """Load the version CURRENT names if another process saved one; False if unchanged (or unsaved edits)."""
        version = read_current(self.path)
        if version is None or version == self._live.version:
            return False
        with self._lock:
            if self._dirty:
                log.warning("index at %s changed on disk; not reloaded over unsaved changes", self.path)
                return False
            if read_current(self.path) == self._live.version:
                return False  # another thread reloaded it while this one waited
            self.config, self._live = read_live(
                self.path, (self.config.embedder, self.config.dim, self.config.identity)
            )
            self._generation += 1
        return True

    def _as_vectors(self, vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
        return unit_vectors(vectors, self.config.dim, what)


def _runs(mask: np.ndarray) -> list[tuple[int, int]] | None:
    """[start, end) of the allowed runs of rows, or None when there are too many to scan one by one."""
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    if len(edges) > 2 * MAX_RUNS:
        return None
    bounds = np.concatenate([[0] if mask[0] else [], edges, [len(mask)] if mask[-1] else []]).astype(np.int64)
    return list(zip(bounds[::2].tolist(), bounds[1::2].tolist(), strict=True))


def create_faiss_index(path: Path, *, embedder: str, dim: int, settings: Settings, identity: str = "") -> FaissIndex:
    """An empty index that replaces whatever is at ``path`` on its first save (a full rebuild)."""
    kind = "hnsw" if settings.index_kind == "hnsw" else "flat"
    config = IndexConfig(embedder, dim, settings.index_metric, kind, identity=identity or embedder)
    return FaissIndex(Path(path), config, settings)


def open_faiss_index(
    path: Path, *, embedder: str, dim: int, settings: Settings, create: bool = True, identity: str = ""
) -> FaissIndex:
    """The index saved at ``path`` (ConfigError if built by another embedder or damaged), or a new empty one.

    After ``discard(path)`` a writer (``create``) gets an empty index, a reader still the live one.
    """
    path = Path(path)
    if create and (path / DISCARDED).exists():
        return create_faiss_index(path, embedder=embedder, dim=dim, settings=settings, identity=identity)
    if read_current(path) is not None:
        config, live = read_live(path, (embedder, dim, identity))
        return FaissIndex(path, config, settings, live)
    if has_versions(path):
        raise ConfigError(f"the index at {path} has versions but no {CURRENT} file naming the live one", HINT)
    if not create:
        raise ConfigError(f"there is no index at {path}", "build one with `sveta index build`")
    return create_faiss_index(path, embedder=embedder, dim=dim, settings=settings, identity=identity)
