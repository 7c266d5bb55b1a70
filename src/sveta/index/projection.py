"""2-D maps of the index's vectors for the web page: PCA and Barnes-Hut t-SNE (scikit-learn), kept per version."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.index.base import VectorIndex

log = logging.getLogger(__name__)
METHODS = ("pca", "tsne")
PCA_POINTS = 5000  # the PCA map's sample: a randomized SVD of at most this many rows, well under a second
TSNE_DIMS = 50  # t-SNE starts from this many principal components, as the usual recipe does
MAP_FORMAT = 1
Key = tuple[str | None, int]  # (index version, vectors in it): a new version is a new key


@dataclass
class CatalogMap:
    """A map of a fixed random sample of products, its points in sample order: any prefix is a smaller sample."""

    method: str
    total: int  # products in the index
    points: list[dict[str, Any]]
    explained: list[float]  # PCA: the variance share of each axis; t-SNE: []

    def head(self, limit: int) -> CatalogMap:
        """The first ``limit`` points of the sample, in product order, scaled into [-1, 1] again."""
        points = sorted(self.points[: max(limit, 0)], key=lambda p: int(p["product_id"]))
        xy = _scaled(np.array([[p["x"], p["y"]] for p in points], dtype=np.float64).reshape(-1, 2))
        placed = [p | {"x": round(x, 4), "y": round(y, 4)} for p, (x, y) in zip(points, xy.tolist(), strict=True)]
        return CatalogMap(self.method, self.total, placed, self.explained)

    def as_dict(self) -> dict[str, Any]:
        categories = sorted({str(p["category"]) for p in self.points})
        return {
            "method": self.method,
            "total": self.total,
            "count": len(self.points),
            "explained": self.explained,
            "categories": categories,
            "points": self.points,
        }


def catalog_map(catalog: CatalogStore, index: VectorIndex, method: str = "pca", limit: int = PCA_POINTS) -> CatalogMap:
    """One photo per product (a fixed random sample of at most ``limit``) projected to 2-D, scaled to [-1, 1]."""
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}")
    total, chosen = _sample(index, limit)
    if not chosen:
        return CatalogMap(method, 0, [], [])
    vectors = index.vectors(np.array(list(chosen.values()), dtype=np.int64)).astype(np.float32)
    if method == "pca":
        xy, explained = pca_2d(vectors)
    else:
        xy, explained = tsne_2d(vectors), []
    return CatalogMap(method, total, _points(catalog, chosen, _scaled(xy)), explained)


def _sample(index: VectorIndex, limit: int) -> tuple[int, dict[int, int]]:
    """The number of products, and product id -> first photo of at most ``limit`` of them, in a fixed random order."""
    ids = np.asarray(index.ids(), dtype=np.int64)
    metas = index.meta(ids) if len(ids) else []
    first: dict[int, int] = {}
    for image_id, meta in sorted(zip(ids.tolist(), metas, strict=True), key=lambda pair: pair[0]):
        first.setdefault(meta.product_id, image_id)
    products = sorted(first)
    order = np.random.default_rng(0).permutation(len(products))[: max(limit, 0)].tolist()
    return len(products), {products[i]: first[products[i]] for i in order}


def _points(catalog: CatalogStore, chosen: dict[int, int], xy: np.ndarray) -> list[dict[str, Any]]:
    """The map's points: each product's place, category and title, and its photo's address."""
    from sveta.catalog.queries import product_cards

    cards = product_cards(catalog, list(chosen), photos=False)
    points = []
    for (x, y), (product_id, image_id) in zip(xy.tolist(), chosen.items(), strict=True):
        card = cards.get(product_id)
        points.append(
            {
                "product_id": product_id,
                "image_id": image_id,
                "x": round(x, 6),
                "y": round(y, 6),
                "category": (card.category if card else None) or "unknown",
                "title": card.title if card else "",
                "href": f"/api/images/{image_id}",
            }
        )
    return points


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The rows on their first two principal axes, and the share of the variance each axis keeps.

    A randomized SVD (scikit-learn): the exact SVD's axes to 1e-4 of the map's extent, ten times faster for
    thousands of photo vectors, so that the first request of an index version answers at once."""
    if min(x.shape) <= 2:
        return _pca_exact(x)
    decomposition = require("sklearn.decomposition", None)
    pca = decomposition.PCA(n_components=2, svd_solver="randomized", random_state=0)
    xy = np.asarray(pca.fit_transform(x), dtype=np.float64)
    return xy, [round(float(v), 4) for v in np.nan_to_num(pca.explained_variance_ratio_)]


def _pca_exact(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """pca_2d by a full SVD, for a handful of rows or columns."""
    centred = x - x.mean(axis=0, keepdims=True)
    if len(x) < 2:
        return np.zeros((len(x), 2), np.float32), [0.0, 0.0]
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    if len(axes) < 2:
        axes = np.vstack([axes, np.zeros((2 - len(axes), x.shape[1]), x.dtype)])
    variance = s**2
    share = (variance[:2] / variance.sum()).tolist() if variance.sum() > 0 else [0.0, 0.0]
    return centred @ axes.T, [round(float(v), 4) for v in share] + [0.0] * (2 - len(share))


def tsne_2d(x: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """Barnes-Hut t-SNE (scikit-learn, O(n log n)) of the rows' first 50 principal components, PCA-initialised.

    500 iterations, as the exact t-SNE it replaced ran, on one OpenMP thread: it runs beside the server's requests,
    and on a busy machine more threads spin at every step (five times slower on 2 loaded cores)."""
    n = len(x)
    if n < 4:
        return pca_2d(x)[0]
    manifold, threads = require("sklearn.manifold", None), require("threadpoolctl", None)
    tsne = manifold.TSNE(
        n_components=2,
        perplexity=min(perplexity, (n - 1) / 3),
        max_iter=500,
        init="pca",
        learning_rate="auto",
        method="barnes_hut",
        random_state=seed,
    )
    with threads.threadpool_limits(limits=1, user_api="openmp"):  # this thread's OpenMP only, not the process's
        return np.asarray(tsne.fit_transform(_principal(x, TSNE_DIMS, seed)), dtype=np.float64)


def _principal(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """The rows on their first ``dims`` principal axes (randomized PCA; all of them when there are no more)."""
    if min(x.shape) <= dims:
        return (x - x.mean(axis=0, keepdims=True)).astype(np.float32)
    decomposition = require("sklearn.decomposition", None)
    pca = decomposition.PCA(n_components=dims, svd_solver="randomized", random_state=seed)
    return np.asarray(pca.fit_transform(x), dtype=np.float32)


def _scaled(xy: np.ndarray) -> np.ndarray:
    """Centred and scaled into [-1, 1] on the longer axis (the aspect kept)."""
    xy = xy - (xy.max(axis=0) + xy.min(axis=0)) / 2 if len(xy) else xy
    extent = float(np.abs(xy).max()) if xy.size else 0.0
    return xy / extent if extent > 0 else xy


# -- on disk: one file per map beside the index version's files -------------------------------------


def map_path(index_dir: Path, version: str, method: str, points: int) -> Path:
    """Where the ``method`` map of at most ``points`` products of ``version`` is kept: in the version's folder, so
    the version's pruning removes it and a new version never finds it."""
    return Path(index_dir) / version / f"map-{method}-{points}.json"


def save_map(found: CatalogMap, path: Path) -> None:
    """Write the map to ``path`` atomically (a temporary file renamed): a reader sees the whole map or none."""
    body = {"format": MAP_FORMAT, "method": found.method, "total": found.total, "explained": found.explained}
    tmp = path.with_name(f"{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        tmp.write_text(json.dumps(body | {"points": found.points}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_map(path: Path) -> CatalogMap | None:
    """The map saved at ``path``; None when there is none or it cannot be read (then it is made again)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("format") != MAP_FORMAT:
            return None
        return CatalogMap(str(body["method"]), int(body["total"]), list(body["points"]), list(body["explained"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the unreadable map %s: %s", path, exc)
        return None


# -- the maps of the live version, t-SNE made in the background -------------------------------------


class MapCache:
    """The maps of the live index version, each made once: PCA when first asked (fast), t-SNE of ``tsne_points``
    products in a background thread (seconds), kept in memory and the t-SNE on disk, so a restart reuses it."""

    def __init__(self, index_dir: Path, tsne_points: int) -> None:
        self.index_dir, self.tsne_points = Path(index_dir), tsne_points
        self.computed = 0  # t-SNE maps made by this cache (not read from disk)
        self._lock = threading.Lock()  # guards every field below; never held while a map is made
        self._pca_lock = threading.Lock()  # one PCA at a time: the others wait for it and reuse it
        self._live: Key | None = None
        self._maps: dict[str, CatalogMap] = {}  # method -> the live key's map
        self._failed: dict[Key, Exception] = {}
        self._running: Key | None = None
        self._pending: tuple[Key, Callable[[], CatalogMap]] | None = None

    def pca(self, key: Key, catalog: CatalogStore, index: VectorIndex) -> CatalogMap:
        """The PCA map of ``key``'s index, made now if it was not yet."""
        with self._pca_lock:
            with self._lock:
                self._switch(key)
                found = self._maps.get("pca")
            if found is None:
                found = catalog_map(catalog, index, "pca", PCA_POINTS)
                with self._lock:
                    if key == self._live:
                        self._maps["pca"] = found
            return found

    def tsne(self, key: Key, catalog: CatalogStore, index: VectorIndex) -> CatalogMap | None:
        """The t-SNE map of ``key``'s index from memory or disk; else None, while a background thread makes it.

        A failure of that thread is raised here once; the next call tries again."""
        with self._lock:
            self._switch(key)
            found = self._maps.get("tsne") or self._read(key)
            if found is not None:
                self._maps["tsne"] = found
                return found
            failed = self._failed.pop(key, None)
            if failed is not None:
                raise failed
            if key != self._running:
                self._queue(key, lambda: catalog_map(catalog, index, "tsne", self.tsne_points))
            return None

    def _switch(self, key: Key) -> None:
        """Forget the maps of another version once ``key`` is asked for (the caller holds the lock)."""
        if key != self._live:
            self._live, self._maps, self._failed = key, {}, {}

    def _read(self, key: Key) -> CatalogMap | None:
        version = key[0]
        return None if version is None else load_map(map_path(self.index_dir, version, "tsne", self.tsne_points))

    def _queue(self, key: Key, make: Callable[[], CatalogMap]) -> None:
        """Make ``key``'s map next; start the worker unless one runs (the caller holds the lock)."""
        idle = self._running is None and self._pending is None
        self._pending = (key, make)  # a newer version replaces an older one still waiting
        if idle:
            threading.Thread(target=self._work, name="sveta-map", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._pending is None:
                    self._running = None
                    return
                (key, make), self._pending = self._pending, None
                self._running = key
            self._make(key, make)

    def _make(self, key: Key, make: Callable[[], CatalogMap]) -> None:
        try:
            found = make()
        except Exception as exc:
            log.warning("the t-SNE map of index version %s failed: %s", key[0], exc)
            with self._lock:
                self._failed[key] = exc
            return
        self._write(key, found)
        with self._lock:
            self.computed += 1
            if key == self._live:
                self._maps["tsne"] = found

    def _write(self, key: Key, found: CatalogMap) -> None:
        if key[0] is None:
            return  # a backend without versions on disk (Milvus): kept in memory only
        path = map_path(self.index_dir, key[0], "tsne", self.tsne_points)
        try:
            save_map(found, path)
        except OSError as exc:  # the version was pruned meanwhile: a newer one is live
            log.warning("could not keep the t-SNE map in %s: %s", path, exc)
