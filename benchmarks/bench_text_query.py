"""One shopper's query through e5-small: on one OpenMP thread or on all, with the cores idle and with one kept busy.

    .venv/bin/python benchmarks/bench_text_query.py          # ~30 s; writes benchmarks/results/text-query.json

Hybrid search reads the keyword index in a worker thread while the query is embedded, and a server answers other
requests meanwhile, so a query is often embedded with a core taken. The engine splits one text's matmuls across its
threads with a barrier after each; this measures what that costs when a thread is descheduled (a busy core is a
separate process spinning, so the GIL plays no part). Latencies are p50 / p99 over the same queries, in one process,
alternating the thread counts; the ratios are what the run shows, the milliseconds depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sveta.embed.base import get_text_embedder
from sveta.embed.text_models import _omp_threads
from sveta.settings import Settings

OUT = Path(__file__).parent / "results" / "text-query.json"
QUERIES = [
    "men casual blue shirts", "red floral dress for women", "nike running shoes", "black leather handbag",
    "kurta", "white sneakers under 3000", "navy formal trousers", "girls pink top", "sports watch", "denim jacket",
]  # fmt: skip
ROUNDS = 3


def _latencies(model: object, threads: int) -> list[float]:
    engine = model._load()  # type: ignore[attr-defined]
    out = []
    for query in QUERIES * 4:
        _omp_threads(engine, threads)
        started = time.perf_counter()
        engine.query([query])
        out.append(1000 * (time.perf_counter() - started))
    return out


def _measure(model: object, threads: list[int]) -> dict[str, dict[str, float]]:
    samples: dict[int, list[float]] = {t: [] for t in threads}
    for _ in range(ROUNDS):  # alternated, so a slow minute falls on both
        for t in threads:
            samples[t] += _latencies(model, t)
    return {f"{t}_threads": _percentiles(v) for t, v in samples.items()}


def _percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def main() -> None:
    cores = os.cpu_count() or 1
    model = get_text_embedder("e5-small", Settings(onnx_threads=cores))
    model.embed_texts(QUERIES)  # loads the model
    threads = sorted({1, cores})
    result: dict[str, object] = {"cores": cores, "queries": len(QUERIES) * 4 * ROUNDS, "idle": _measure(model, threads)}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one core taken, as by a keyword look-up
    try:
        time.sleep(0.5)
        result["one_core_busy"] = _measure(model, threads)
    finally:
        busy.kill()
    for case in ("idle", "one_core_busy"):
        rows = result[case]
        assert isinstance(rows, dict)
        one, many = rows["1_threads"], rows[f"{cores}_threads"]
        rows["p99_ratio_all_over_one"] = round(many["p99_ms"] / one["p99_ms"], 2)
        print(f"{case}: 1 thread {one}, {cores} threads {many}, p99 ratio {rows['p99_ratio_all_over_one']}")
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
