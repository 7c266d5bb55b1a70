"""The catalog map's t-SNE: scikit-learn's Barnes-Hut against the old exact numpy t-SNE, and /api/map once cached.

    python benchmarks/bench_map.py                     # 2,000 real vectors, the old exact t-SNE on 2,000 too
    python benchmarks/bench_map.py --old-points 1000   # the old one on fewer (it is O(n^2) a step)

The vectors are real: the first N photos of ../shared's myntra-small, ingested and indexed with the default embedder
(effnet-lite0 + colour) into a data home under /tmp/sveta-bench-map (made once, about a minute on 2 cores). The old
exact t-SNE (removed from sveta.index.projection) is kept here, verbatim, as the baseline; both run in this process.
Then the endpoint: the background t-SNE of a fresh app, the first answer of a restarted app (the map read from the
version's folder), and the latency of 50 requests with varying limits once the map is made. Writes
benchmarks/results/map.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _homes import indexed_home  # benchmarks/ is on the path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets" / "myntra-small"
HOME = Path("/tmp/sveta-bench-map")
OUT = ROOT / "benchmarks" / "results" / "map.json"


# -- the old exact t-SNE (sveta.index.projection before the library one), the baseline ----------------


def old_tsne_2d(x: np.ndarray, perplexity: float = 30.0, iterations: int = 500, seed: int = 0) -> np.ndarray:
    """Exact t-SNE (van der Maaten & Hinton 2008) in numpy, from PCA coordinates: for a few thousand points."""
    n, exaggeration = len(x), 12.0
    centred = x - x.mean(axis=0, keepdims=True)
    if centred.shape[1] > 50:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ vt[:50].T
    p = _affinities(_squared_distances(centred.astype(np.float64)), min(perplexity, (n - 1) / 3))
    init = _exact_pca_2d(centred)
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


def _exact_pca_2d(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray(centred @ vt[:2].T)


def _squared_distances(x: np.ndarray) -> np.ndarray:
    norms = (x * x).sum(axis=1)
    d = norms[:, None] + norms[None, :] - 2 * x @ x.T
    np.fill_diagonal(d, 0.0)
    return np.maximum(d, 0.0)


def _affinities(d: np.ndarray, perplexity: float, steps: int = 50) -> np.ndarray:
    n = len(d)
    target = np.log(perplexity)
    beta, low, high = np.ones(n), np.zeros(n), np.full(n, np.inf)
    mask = ~np.eye(n, dtype=bool)
    d = d / (np.median(d[mask]) or 1.0)
    for _ in range(steps):
        p = np.exp(-d * beta[:, None]) * mask
        total = p.sum(axis=1).clip(1e-12)
        entropy = np.log(total) + beta * (d * p).sum(axis=1) / total
        too_flat = entropy > target
        low = np.where(too_flat, beta, low)
        high = np.where(too_flat, high, beta)
        beta = np.where(np.isinf(high), beta * 2, (low + high) / 2)
    p = np.exp(-d * beta[:, None]) * mask
    p /= p.sum(axis=1, keepdims=True).clip(1e-12)
    return np.maximum((p + p.T) / (2 * n), 1e-12)


def _gradient(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    num = 1.0 / (1.0 + _squared_distances(y))
    np.fill_diagonal(num, 0.0)
    q = np.maximum(num / num.sum(), 1e-12)
    w = (p - q) * num
    return 4.0 * (w.sum(axis=1)[:, None] * y - w @ y)


# -- the real catalog --------------------------------------------------------------------------------


def settings_for(points: int) -> Any:
    from sveta.settings import Settings

    return Settings(data_dir=HOME / "data", map_points=points, sync_every="0")


def build_home(n: int) -> dict[str, Any]:
    """The first n rows of myntra-small ingested and indexed under HOME, unless an index of n vectors is there."""
    return indexed_home(settings_for(n), HOME, SHARED, n)


def real_vectors(n: int) -> np.ndarray:
    from sveta.index.catalog_index import open_catalog_index

    index = open_catalog_index(settings_for(n), create=False)
    return np.asarray(index.vectors(np.asarray(index.ids(), dtype=np.int64)[:n]), dtype=np.float32)


# -- measurements ------------------------------------------------------------------------------------


def timed_tsne(make: Any, vectors: np.ndarray) -> dict[str, Any]:
    from sklearn.manifold import trustworthiness

    started = time.perf_counter()
    embedded = make(vectors)
    seconds = time.perf_counter() - started
    trust = trustworthiness(vectors, embedded, n_neighbors=10)
    return {"points": len(vectors), "seconds": round(seconds, 2), "trustworthiness_k10": round(float(trust), 4)}


def compare_tsne(vectors: np.ndarray, old_points: int) -> dict[str, Any]:
    from sveta.index.projection import tsne_2d

    library = timed_tsne(tsne_2d, vectors)
    old = timed_tsne(old_tsne_2d, vectors[:old_points])
    same = old_points == len(vectors)
    result: dict[str, Any] = {"library_barnes_hut": library, "old_exact": old}
    if same:
        result["speedup_old_over_library"] = round(old["seconds"] / library["seconds"], 1)
    else:
        small = timed_tsne(tsne_2d, vectors[:old_points])
        result["library_barnes_hut_same_points"] = small
        result["speedup_old_over_library_same_points"] = round(old["seconds"] / small["seconds"], 1)
    return result


def _forget_maps(settings: Any) -> None:
    from sveta.index.versions import read_current

    for path in (settings.index_dir / str(read_current(settings.index_dir))).glob("map-*.json"):
        path.unlink()


def _get(client: Any, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get("/api/map", params=params)
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return seconds, response.json()


def endpoint(points: int, requests: int, baseline_s: float) -> dict[str, Any]:
    """A fresh app's background t-SNE, a restarted app's first answer, then ``requests`` varying limits."""
    from fastapi.testclient import TestClient

    from sveta.api import create_app

    settings = settings_for(points)
    _forget_maps(settings)
    with TestClient(create_app(settings)) as client:
        first_s, body = _get(client, {"method": "tsne"})
        started, polls = time.perf_counter(), []
        while body["status"] == "computing":
            time.sleep(0.1)
            seconds, body = _get(client, {"method": "tsne", "limit": 1 + len(polls) * 37 % 2000})
            polls.append(seconds)
        background_s = time.perf_counter() - started + first_s
    with TestClient(create_app(settings)) as client:
        restart_s, restarted = _get(client, {"method": "tsne"})
        assert restarted["status"] == "ready", "the map was not read back from the version's folder"
        limits = np.random.default_rng(0).integers(1, points + 500, size=requests).tolist()
        latencies = [_get(client, {"method": "tsne", "limit": limit})[0] for limit in limits]
    p50 = statistics.median(latencies)
    return {
        "map_points": points,
        "first_answer_while_computing_ms": round(first_s * 1000, 1),
        "background_tsne_until_ready_s": round(background_s, 2),
        "answers_while_computing": len(polls),
        "answers_while_computing_p50_ms": round(statistics.median(polls or [0.0]) * 1000, 1),
        "restarted_app_first_answer_ms": round(restart_s * 1000, 1),
        "requests": requests,
        "limits": f"random 1..{points + 499} (seed 0), {sum(x > points for x in limits)} of them clamped",
        "cached_p50_ms": round(p50 * 1000, 1),
        "cached_p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 1),
        "old_endpoint_per_new_limit_s": round(baseline_s, 2),
        "old_over_cached_p50": round(baseline_s / p50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2000, help="real vectors (and SVETA_MAP_POINTS)")
    parser.add_argument("--old-points", type=int, default=2000, help="points for the old exact t-SNE")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    machine = _machine()
    home = build_home(args.points)
    vectors = real_vectors(args.points)
    tsne = compare_tsne(vectors, args.old_points)
    print(json.dumps(tsne, indent=1), file=sys.stderr)
    # the old endpoint made a new exact t-SNE for every distinct limit, of at most 1,000 points
    old_1000 = tsne["old_exact"] if args.old_points == 1000 else timed_tsne(old_tsne_2d, vectors[:1000])
    result = {
        "command": "python " + " ".join(["benchmarks/bench_map.py", *sys.argv[1:]]),
        "machine": machine,
        "vectors": {"count": len(vectors), "dim": int(vectors.shape[1]), "home": home},
        "tsne": tsne,
        "old_exact_1000_points": old_1000,
        "endpoint": endpoint(args.points, args.requests, old_1000["seconds"]),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


def _machine() -> dict[str, Any]:
    import sklearn

    return {
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
    }


if __name__ == "__main__":
    main()
