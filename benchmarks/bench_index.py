"""Vector index benchmark: filtered query latency, recall@10 and memory of FaissIndex against numpy brute force.

    python benchmarks/bench_index.py                      # 10k, 100k and 1M vectors (~20 min on 2 cores)
    python benchmarks/bench_index.py --sizes 10000,100000

Vectors are 1,344-d and real-like: the real embeddings at /tmp/sveta-emb/effnet_colour.npy
(effnet-lite0 + colour histogram of the demo photos, made on first use from ../shared) replicated
to the wanted size by moving each towards one of its 10 nearest neighbours and adding noise;
without ../shared, clustered synthetic vectors. Each size is built in one child process and served
(loaded, queried) in another, so the peak RSS reported is that of serving: imports, the loaded
index and its searches. Writes benchmarks/results/index.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REAL = Path("/tmp/sveta-emb/effnet_colour.npy")
DIM = 1344
CHUNK = 50_000
OUT = Path(__file__).resolve().parent / "results" / "index.json"


def embed_shared(shared: Path = Path(__file__).resolve().parents[2] / "shared") -> bool:
    """Write REAL: effnet-lite0 + colour vectors of every shared catalog photo (~2.5 min on 2 cores, once)."""
    photos = sorted((shared / "datasets" / "myntra-small" / "images").glob("*.jpg"))
    if not photos:
        return False
    from sveta.embed.base import get_embedder
    from sveta.embed.pipeline import embed_cached
    from sveta.settings import Settings

    print(f"embedding {len(photos)} shared photos once into {REAL}", file=sys.stderr)
    settings = Settings(data_dir=REAL.parent / "data")
    embedder = get_embedder("effnet-lite0+colour", settings)
    _, vectors, _ = embed_cached(embedder, [(int(p.stem), p, None) for p in photos], settings)
    np.save(REAL, vectors.astype(np.float32))
    return True


def base_vectors() -> tuple[np.ndarray, str]:
    if REAL.is_file() or embed_shared():
        base = np.load(REAL).astype(np.float32)
        return base, f"real-like: {len(base)} real embeddings from {REAL}, replicated with noise"
    rng = np.random.default_rng(0)  # stand-in "real" set: 300 clusters in a 48-d subspace
    basis, offset = rng.standard_normal((48, DIM)), np.abs(rng.standard_normal(DIM)) * 0.5
    z = rng.standard_normal((300, 48))[rng.integers(300, size=10_000)] + 0.7 * rng.standard_normal((10_000, 48))
    base = (z @ basis / np.sqrt(48) + offset + 0.1 * rng.standard_normal((10_000, DIM))).astype(np.float32)
    return base / np.linalg.norm(base, axis=1, keepdims=True), "clustered synthetic (no real embeddings cached)"


def neighbours(base: np.ndarray) -> np.ndarray:
    out = np.empty((len(base), 10), np.int64)
    for start in range(0, len(base), 2048):
        sims = base[start : start + 2048] @ base.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -9
        out[start : start + 2048] = np.argpartition(-sims, 10, axis=1)[:, :10]
    return out


def replicate(base: np.ndarray, nn: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n vectors between a real one and one of its neighbours, plus noise; and which real one each came from."""
    rng = np.random.default_rng(seed)
    src = rng.integers(len(base), size=n)
    lam = rng.uniform(0, 0.5, (n, 1)).astype(np.float32)
    v = (1 - lam) * base[src] + lam * base[nn[src, rng.integers(10, size=n)]]
    v += (0.35 / np.sqrt(base.shape[1])) * rng.standard_normal(v.shape, dtype=np.float32)
    np.maximum(v, 0, out=v)  # CNN features and histograms are non-negative
    return v / np.linalg.norm(v, axis=1, keepdims=True), src


def metas(ids: np.ndarray, src: np.ndarray, seed: int) -> list[Any]:
    """category follows the source photo (neighbours share it, ~5% each); gender and brand are random."""
    from sveta.index.base import ItemMeta

    rng = np.random.default_rng(seed + 10**6)  # not the generator of the vectors: gender must not follow them
    genders, brands = rng.integers(2, size=len(ids)), rng.integers(100, size=len(ids))
    return [
        ItemMeta(product_id=int(i), category=f"cat{s % 20}", gender=("women", "men")[g], brand=f"b{b}")
        for i, s, g, b in zip(ids.tolist(), src.tolist(), genders.tolist(), brands.tolist(), strict=True)
    ]


def settings_for(n: int, args: argparse.Namespace, workdir: Path) -> Any:
    from sveta.settings import Settings

    big = n >= args.big
    return Settings(
        data_dir=workdir,
        index_kind="hnsw" if big else "auto",  # 1M: add straight into the graph, no flat copy first
        hnsw_m=args.big_m if big else Settings().hnsw_m,
        hnsw_ef_construction=args.big_ef_construction if big else Settings().hnsw_ef_construction,
    )


def build(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from sveta.index.faiss_index import open_faiss_index

    settings = settings_for(n, args, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base, _ = base_vectors()
    nn = neighbours(base)
    index = open_faiss_index(workdir / "index", embedder="bench", dim=base.shape[1], settings=settings)
    started, gen_s = time.perf_counter(), 0.0
    for start in range(0, n, CHUNK):
        t = time.perf_counter()
        vectors, src = replicate(base, nn, min(CHUNK, n - start), seed=start + 1)
        ids = np.arange(start, start + len(vectors), dtype=np.int64)
        meta = metas(ids, src, seed=start + 1)
        gen_s += time.perf_counter() - t
        index.upsert(ids, vectors, meta)
        print(f"  {start + len(vectors):>9,} vectors  {time.perf_counter() - started:7.1f} s", file=sys.stderr)
    queries, _ = replicate(base, nn, args.queries, seed=10**9)  # held out: not in the index
    np.save(workdir / "queries.npy", queries)
    add_s = time.perf_counter() - started - gen_s
    t = time.perf_counter()
    index.save()  # auto: the switch to HNSW (graph build) happens here
    save_s = time.perf_counter() - t
    return {
        "build_s": round(add_s + save_s, 1),
        "add_s": round(add_s, 1),
        "save_s": round(save_s, 1),
        "kind": index.config.kind,
        "params": {k: v for k, v in index.config.params.items() if k in ("m", "ef_construction")},
        "disk_mb": round(sum(f.stat().st_size for f in (workdir / "index").rglob("*") if f.is_file()) / 2**20),
    }


def peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss, it is not inherited from the parent's image across exec."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Any, queries: np.ndarray) -> tuple[list[float], list[Any]]:
    times, out = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t)
    return times, out


def brute_force(xb: np.ndarray, q: np.ndarray, mask: np.ndarray | None, k: int = 10) -> np.ndarray:
    scores = xb @ q
    if mask is not None:
        scores[~mask] = -np.inf
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def serve(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from sveta.index.base import Filter
    from sveta.index.faiss_index import open_faiss_index

    rss_import = peak_rss_mb()
    settings = settings_for(n, args, workdir)
    queries = np.load(workdir / "queries.npy")
    t = time.perf_counter()
    index = open_faiss_index(workdir / "index", embedder="bench", dim=queries.shape[1], settings=settings)
    load_s = time.perf_counter() - t
    filters = {
        "none": None,
        "category (~5%)": Filter(category=["cat3"]),
        "gender (~50%)": Filter(gender=["women"]),
        "category+gender (~2.5%)": Filter(category=["cat3"], gender=["women"]),
        "brand (~1%, scattered)": Filter(brand=["b7"]),
    }
    runs = {}
    for name, flt in filters.items():
        index.search(queries[:5], 10, flt, distinct_products=False)  # warm up
        times, hits = timed(lambda q, f=flt: index.search(q, 10, f, distinct_products=False)[0], queries)
        runs[name] = (flt, times, hits)
    rss_serving = peak_rss_mb()
    live = index._live  # the same vectors and metadata, for the baseline
    xb, cols = index._xb(live.index), live.cols
    truth_n = min(args.queries, args.truth if n >= args.big else args.queries)
    rows = []
    for name, (flt, times, hits) in runs.items():
        mask = None if flt is None else cols.mask(flt)
        base_times, truth = timed(lambda q, m=mask: brute_force(xb, q, m), queries[:truth_n])
        found = sum(len({h.id for h in hits[i]} & set(cols.ids[truth[i]].tolist())) for i in range(truth_n))
        rows.append(
            {
                "filter": name,
                "selectivity": round(1.0 if mask is None else float(mask.mean()), 4),
                "p50_ms": round(1e3 * float(np.median(times)), 3),
                "p99_ms": round(1e3 * float(np.percentile(times, 99)), 3),
                "numpy_p50_ms": round(1e3 * float(np.median(base_times)), 2),
                "numpy_p99_ms": round(1e3 * float(np.percentile(base_times, 99)), 2),
                "speedup_p50": round(float(np.median(base_times) / np.median(times)), 1),
                "recall_at_10": round(found / (10 * truth_n), 4),
                "k_filled": all(len(h) == 10 for h in hits),
            }
        )
    return {
        "load_s": round(load_s, 1),
        "rss_import_mb": round(rss_import),
        "rss_serving_mb": round(rss_serving),
        "queries": args.queries,
        "truth_queries": truth_n,
        "rows": rows,
    }


def child(args: argparse.Namespace) -> None:
    n, workdir = args.child_size, Path(args.child_dir)
    result = build(n, args, workdir) if args.child == "build" else serve(n, args, workdir)
    print(json.dumps(result))


def run_child(step: str, n: int, workdir: Path, argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *argv, "--child", step, "--child-size", str(n), "--child-dir", str(workdir)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def table(results: dict[str, Any]) -> None:
    print(
        f"{'size':>9} {'filter':<24} {'sel':>6} {'p50 ms':>7} {'p99 ms':>7} {'numpy p50':>9} {'speedup':>7} "
        f"{'rec@10':>6}"
    )
    for size, res in results["sizes"].items():
        for r in res["rows"]:
            print(
                f"{int(size):>9,} {r['filter']:<24} {r['selectivity']:>6.3f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                f"{r['numpy_p50_ms']:>9.1f} {r['speedup_p50']:>6.0f}x {r['recall_at_10']:>6.3f}"
            )
        print(
            f"{'':>9} {res['kind']} {res['params']}: build {res['build_s']} s (save {res['save_s']} s), "
            f"load {res['load_s']} s, disk {res['disk_mb']} MB, peak RSS serving {res['rss_serving_mb']} MB "
            f"(after imports {res['rss_import_mb']} MB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=300, help="queries timed per filter")
    parser.add_argument("--truth", type=int, default=100, help="brute-force queries at --big sizes and above")
    parser.add_argument("--big", type=int, default=500_000, help="sizes from which the cheaper HNSW build is used")
    parser.add_argument("--big-m", type=int, default=16)
    parser.add_argument("--big-ef-construction", type=int, default=64)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", type=Path, help="keep the built indexes here and reuse them on the next run")
    parser.add_argument("--child", choices=["build", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    passthrough = [
        f"--queries={args.queries}",
        f"--truth={args.truth}",
        f"--big={args.big}",
        f"--big-m={args.big_m}",
        f"--big-ef-construction={args.big_ef_construction}",
    ]
    results: dict[str, Any] = {
        "data": base_vectors()[1],
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(), "python": platform.python_version()},
        "sizes": {},
    }
    print(f"data: {results['data']}", file=sys.stderr)
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="sveta-bench-") as tmp:
            workdir = args.keep / str(n) if args.keep else Path(tmp)
            if (workdir / "build.json").is_file():
                built = json.loads((workdir / "build.json").read_text())
            else:
                print(f"{n:,} vectors: building", file=sys.stderr)
                built = run_child("build", n, workdir, passthrough)
                if args.keep:
                    (workdir / "build.json").write_text(json.dumps(built))
            print(f"{n:,} vectors: serving", file=sys.stderr)
            results["sizes"][str(n)] = built | run_child("serve", n, workdir, passthrough)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")  # after each size: partial results survive
    table(results)


if __name__ == "__main__":
    main()
