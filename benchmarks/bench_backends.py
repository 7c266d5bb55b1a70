"""Index backends side by side: FAISS against Milvus Lite at 100k vectors, p50 / p99 latency and recall@10, in one run.

    python benchmarks/bench_backends.py                    # 100k vectors, 200 queries per filter (~10 min on 2 cores)
    python benchmarks/bench_backends.py --size 20000 --queries 50

The vectors are bench_index.py's: real effnet-lite0 + colour embeddings of the shared catalog replicated with noise
(embedded once from ../shared into /tmp/sveta-emb on first use). Besides its category / gender / brand, each vector
gets a "look-alike group": the nearest of 20 real photos, so that filter follows the photos as a real article type does
(the query's own neighbourhood may be all excluded: the hard case for a filtered graph walk). Each backend and kind
is built in one child process and served (opened cold, queried one query at a time) in another; recall@10 is
against a numpy brute force over the same rows, and the exact backends' top 10 are also compared with each other.
Writes benchmarks/results/backends-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from bench_index import base_vectors, brute_force, metas, neighbours, peak_rss_mb, replicate, timed

from sveta.index.base import Filter, ItemMeta
from sveta.index.meta import Columns

BACKENDS = {"faiss": "", "milvus-lite": "milvus-lite:milvus"}
KINDS = ("flat", "hnsw")
CHUNK = 50_000
K = 10
TIE = 1e-5  # two exact top 10s agree when their ids are equal, or their scores are at every rank (a tie)
OUT = Path(__file__).resolve().parent / "results"
DATA = "data.npz"


def groups(base: np.ndarray) -> np.ndarray:
    """Each real photo's look-alike group: the nearest of 20 photos drawn once."""
    centres = np.random.default_rng(7).choice(len(base), 20, replace=False)
    return np.argmax(base @ base[centres].T, axis=1)


def prepare(n: int, path: Path) -> str:
    """Write the vectors, their metadata and held-out queries once, for every child to load."""
    base, about = base_vectors()
    nn, group = neighbours(base), groups(base)
    parts, meta = [], []
    for start in range(0, n, CHUNK):
        vectors, src = replicate(base, nn, min(CHUNK, n - start), seed=start + 1)
        chunk = metas(np.arange(start, start + len(vectors), dtype=np.int64), src, seed=start + 1)
        for m, s in zip(chunk, src.tolist(), strict=True):
            m.colour = f"group{group[s]}"  # carried in the colour column: any text field filters alike
        parts.append(vectors)
        meta += chunk
    queries, _ = replicate(base, nn, 1000, seed=10**9)  # held out: not in the index
    text = {f: np.array([getattr(m, f) for m in meta]) for f in ("category", "gender", "colour", "brand")}
    np.savez(path, vectors=np.concatenate(parts), queries=queries, **text)
    return about


def load(path: Path) -> tuple[np.ndarray, list[ItemMeta], np.ndarray]:
    with np.load(path) as data:
        text = [data[f].tolist() for f in ("category", "gender", "colour", "brand")]
        meta = [ItemMeta(i, *values) for i, values in enumerate(zip(*text, strict=True))]
        return data["vectors"], meta, data["queries"]


def filters(meta: list[ItemMeta]) -> dict[str, Filter | None]:
    shares = Counter(m.colour for m in meta)
    group = min(shares, key=lambda g: abs(shares[g] / len(meta) - 0.05))
    return {
        "none": None,
        "category (~5%)": Filter(category=["cat3"]),
        "gender (~50%)": Filter(gender=["women"]),
        "look-alike group (~5%)": Filter(colour=[str(group)]),
        "brand (~1%, scattered)": Filter(brand=["b7"]),
    }


def settings_for(backend: str, kind: str, workdir: Path) -> Any:
    from sveta.settings import Settings

    return Settings(data_dir=workdir, index_url=BACKENDS[backend], index_kind=kind)


def build(backend: str, kind: str, data: Path, workdir: Path) -> dict[str, Any]:
    from sveta.index.backends import open_index

    vectors, meta, _ = load(data)
    n = len(vectors)
    index = open_index(settings_for(backend, kind, workdir), embedder="bench", dim=vectors.shape[1])
    started = time.perf_counter()
    for start in range(0, n, CHUNK):
        index.upsert(np.arange(start, start + CHUNK)[: n - start], vectors[start : start + CHUNK], meta[start:][:CHUNK])
    add_s, t = time.perf_counter() - started, time.perf_counter()
    index.save()  # FAISS writes its files; Milvus flushes (Milvus Lite builds its HNSW graphs here)
    save_s = round(time.perf_counter() - t, 1)
    disk = sum(f.stat().st_size for f in workdir.rglob("*") if f.is_file())
    return {"add_s": round(add_s, 1), "save_s": save_s, "kind": index.config.kind, "disk_mb": round(disk / 2**20)}


def serve(backend: str, kind: str, data: Path, workdir: Path, queries_n: int) -> dict[str, Any]:
    from sveta.index.backends import open_index

    _, meta, queries = load(data)
    queries = queries[:queries_n]
    rss_before, t = peak_rss_mb(), time.perf_counter()
    index = open_index(settings_for(backend, kind, workdir), embedder="bench", dim=queries.shape[1], create=False)
    open_s = time.perf_counter() - t
    rows = {}
    for name, flt in filters(meta).items():
        index.search(queries[:3], K, flt, distinct_products=False)  # warm up (and Milvus's filter count)
        times, hits = timed(lambda q, f=flt: index.search(q, K, f, distinct_products=False)[0], queries)
        rows[name] = {
            "p50_ms": round(1e3 * float(np.median(times)), 2),
            "p99_ms": round(1e3 * float(np.percentile(times, 99)), 2),
            "ids": [[h.id for h in found] for found in hits],
            "scores": [[round(h.score, 6) for h in found] for found in hits],
        }
    return {"open_s": round(open_s, 2), "rss_serving_mb": round(peak_rss_mb() - rss_before), "rows": rows}


def child(args: argparse.Namespace) -> None:
    backend, kind = args.child_backend.split("/")
    workdir = Path(args.child_dir)
    data = Path(args.child_data)
    if args.child == "build":
        result = build(backend, kind, data, workdir)
    else:
        result = serve(backend, kind, data, workdir, args.queries)
    print(json.dumps(result))


def run_child(step: str, backend: str, kind: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, f"--queries={args.queries}", "--child", step, "--child-data", str(root / DATA)]
    cmd += ["--child-backend", f"{backend}/{kind}", "--child-dir", str(root / f"{backend}-{kind}")]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def truth(data: Path, queries_n: int) -> dict[str, Any]:
    """Per filter: selectivity and the brute-force top-10 ids of every query."""
    vectors, meta, queries = load(data)
    cols = Columns()
    cols.append(np.arange(len(vectors), dtype=np.int64), meta)
    out = {}
    for name, flt in filters(meta).items():
        mask = None if flt is None else cols.mask(flt).copy()
        top = [brute_force(vectors, q, mask, K) for q in queries[:queries_n]]
        out[name] = {"selectivity": 1.0 if mask is None else float(mask.mean()), "ids": [t.tolist() for t in top]}
    return out


def agreement(row: dict[str, Any], ref: dict[str, Any]) -> tuple[float, float]:
    """Share of queries whose top 10 has the same ids as ``ref``'s, and the same ids or tied scores (TIE)."""
    same = tied = 0
    for ids, scores, ref_ids, ref_scores in zip(row["ids"], row["scores"], ref["ids"], ref["scores"], strict=True):
        same += ids == ref_ids
        close = len(scores) == len(ref_scores) and np.allclose(scores, ref_scores, rtol=0, atol=TIE)
        tied += ids == ref_ids or close
    return same / len(row["ids"]), tied / len(row["ids"])


def compare(results: dict[str, Any], exact: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, res in results.items():
        for name, row in res["rows"].items():
            want = exact[name]["ids"]
            found = sum(len(set(a) & set(b)) for a, b in zip(row["ids"], want, strict=True))
            same, tied = agreement(row, results["faiss flat"]["rows"][name])
            rows.append(
                {
                    "backend": label,
                    "filter": name,
                    "selectivity": round(exact[name]["selectivity"], 4),
                    "p50_ms": row["p50_ms"],
                    "p99_ms": row["p99_ms"],
                    "recall_at_10": round(found / sum(len(w) for w in want), 4),
                    "k_filled": all(len(ids) == K for ids in row["ids"]),
                    "same_ids_as_faiss_flat": round(same, 4),
                    "same_or_tied_as_faiss_flat": round(tied, 4),
                }
            )
    return rows


def table(report: dict[str, Any]) -> None:
    print(f"{'backend':<17} {'filter':<24} {'sel':>6} {'p50 ms':>8} {'p99 ms':>8} {'rec@10':>7} {'=faiss flat':>11}")
    for r in report["rows"]:
        print(
            f"{r['backend']:<17} {r['filter']:<24} {r['selectivity']:>6.3f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['recall_at_10']:>7.3f} {r['same_ids_as_faiss_flat']:>11.3f}"
        )
    for label, b in report["backends"].items():
        print(
            f"{label:<17} add {b['add_s']} s, save {b['save_s']} s, cold open {b['open_s']} s, "
            f"RSS while serving +{b['rss_serving_mb']} MB, on disk {b.get('disk_mb')} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="queries timed per filter, one at a time")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["build", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--child-backend", help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    out = args.out or OUT / f"backends-{args.size // 1000}k.json"
    started = time.perf_counter()
    results: dict[str, Any] = {}
    backends: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sveta-bench-") as tmp:
        root = Path(tmp)
        print(f"preparing {args.size:,} vectors", file=sys.stderr)
        about = prepare(args.size, root / DATA)
        for backend in BACKENDS:
            for kind in KINDS:
                label = f"{backend} {kind}"
                print(f"{label}: building", file=sys.stderr)
                built = run_child("build", backend, kind, root, args)
                print(f"{label}: serving", file=sys.stderr)
                results[label] = run_child("serve", backend, kind, root, args)
                backends[label] = built | {k: v for k, v in results[label].items() if k != "rows"}
                shutil.rmtree(root / f"{backend}-{kind}")
        exact = truth(root / DATA, args.queries)
    report = {
        "data": about,
        "size": args.size,
        "queries": args.queries,
        "k": K,
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg(), "python": platform.python_version()},
        "backends": backends,
        "rows": compare(results, exact),
        "seconds": round(time.perf_counter() - started),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    table(report)


if __name__ == "__main__":
    main()
