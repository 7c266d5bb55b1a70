"""2-D maps of the index's vectors for the web page: PCA (numpy SVD) and a small exact t-SNE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.index.base import VectorIndex

METHODS = ("pca", "tsne")
MAX_POINTS = {"pca": 5000, "tsne": 1000}  # t-SNE is O(n²) per step: ~6 s for 1,000 points on one core


@dataclass
class CatalogMap:
    method: str
    total: int  # products in the index
    points: list[dict[str, Any]]
    explained: list[float]  # PCA: the variance share of each axis; t-SNE: []

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


def catalog_map(catalog: CatalogStore, index: VectorIndex, method: str = "pca", limit: int = 5000) -> CatalogMap:
    """One photo per product (a fixed random sample of at most ``limit``) projected to 2-D, scaled to [-1, 1]."""
    from sveta.catalog.queries import product_cards

    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}")
    ids = np.asarray(index.ids(), dtype=np.int64)
    metas = index.meta(ids) if len(ids) else []
    first: dict[int, int] = {}
    for image_id, meta in sorted(zip(ids.tolist(), metas, strict=True), key=lambda pair: pair[0]):
        first.setdefault(meta.product_id, image_id)
    products = sorted(first)
    picked = sorted(np.random.default_rng(0).permutation(len(products))[: min(limit, MAX_POINTS[method])].tolist())
    chosen = [products[i] for i in picked]
    image_ids = np.array([first[p] for p in chosen], dtype=np.int64)
    if len(image_ids) == 0:
        return CatalogMap(method, 0, [], [])
    vectors = index.vectors(image_ids).astype(np.float32)
    if method == "pca":
        xy, explained = pca_2d(vectors)
    else:
        xy, explained = tsne_2d(vectors), []
    xy = _scaled(xy)
    cards = product_cards(catalog, chosen)
    points = []
    for (x, y), product_id, image_id in zip(xy.tolist(), chosen, image_ids.tolist(), strict=True):
        card = cards.get(product_id)
        points.append(
            {
                "product_id": product_id,
                "image_id": image_id,
                "x": round(x, 4),
                "y": round(y, 4),
                "category": (card.category if card else None) or "unknown",
                "title": card.title if card else "",
                "href": f"/api/images/{image_id}",
            }
        )
    return CatalogMap(method, len(products), points, explained)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The rows on their first two principal axes, and the share of the variance each axis keeps."""
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


def tsne_2d(
    x: np.ndarray, perplexity: float = 30.0, iterations: int = 500, seed: int = 0, exaggeration: float = 12.0
) -> np.ndarray:
    """Exact t-SNE (van der Maaten & Hinton 2008) in numpy, from PCA coordinates: for a few thousand points."""
    n = len(x)
    if n < 4:
        return pca_2d(x)[0]
    centred = x - x.mean(axis=0, keepdims=True)
    if centred.shape[1] > 50:  # denoise and speed up the distances, as the usual recipe does
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ vt[:50].T
    p = _affinities(_squared_distances(centred.astype(np.float64)), min(perplexity, (n - 1) / 3))
    init = pca_2d(centred)[0]
    y = init / (np.std(init[:, 0]) or 1.0) * 1e-4 + np.random.default_rng(seed).normal(0, 1e-6, (n, 2))
    rate = max(n / exaggeration / 4, 50.0)
    velocity, gains = np.zeros_like(y), np.ones_like(y)
    for step in range(iterations):
        early = step < min(250, iterations // 2)
        grad = _gradient(p * exaggeration if early else p, y)
        gains = np.where(np.sign(grad) != np.sign(velocity), gains + 0.2, gains * 0.8).clip(0.01)
        velocity = (0.5 if early else 0.8) * velocity - rate * gains * grad
        y = y + velocity
        y -= y.mean(axis=0)
    return y


def _squared_distances(x: np.ndarray) -> np.ndarray:
    norms = (x * x).sum(axis=1)
    d = norms[:, None] + norms[None, :] - 2 * x @ x.T
    np.fill_diagonal(d, 0.0)
    return np.maximum(d, 0.0)


def _affinities(d: np.ndarray, perplexity: float, steps: int = 50) -> np.ndarray:
    """Symmetric joint probabilities: each row's Gaussian width found by bisection to match the perplexity."""
    n = len(d)
    target = np.log(perplexity)
    beta, low, high = np.ones(n), np.zeros(n), np.full(n, np.inf)
    mask = ~np.eye(n, dtype=bool)
    scale = np.median(d[mask]) or 1.0
    d = d / scale
    for _ in range(steps):
        p = np.exp(-d * beta[:, None]) * mask
        total = p.sum(axis=1).clip(1e-12)
        entropy = np.log(total) + beta * (d * p).sum(axis=1) / total
        too_flat = entropy > target  # too wide a Gaussian: raise beta
        low = np.where(too_flat, beta, low)
        high = np.where(too_flat, high, beta)
        beta = np.where(np.isinf(high), beta * 2, (low + high) / 2)
    p = np.exp(-d * beta[:, None]) * mask
    p /= p.sum(axis=1, keepdims=True).clip(1e-12)
    joint = (p + p.T) / (2 * n)
    return np.maximum(joint, 1e-12)


def _gradient(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    num = 1.0 / (1.0 + _squared_distances(y))
    np.fill_diagonal(num, 0.0)
    q = np.maximum(num / num.sum(), 1e-12)
    w = (p - q) * num
    return 4.0 * (w.sum(axis=1)[:, None] * y - w @ y)


def _scaled(xy: np.ndarray) -> np.ndarray:
    """Centred and scaled into [-1, 1] on the longer axis (the aspect kept)."""
    xy = xy - (xy.max(axis=0) + xy.min(axis=0)) / 2
    extent = float(np.abs(xy).max()) if xy.size else 0.0
    return xy / extent if extent > 0 else xy
