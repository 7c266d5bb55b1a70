"""The index's row layout: hybrid search's two vector searches with the rows laid out by category and gender (layout
1) and by category, gender and colour (layout 2), on a kept home, in one process.

    .venv/bin/python benchmarks/bench_layout.py --home /tmp/sveta-scale/sqlite-1000000   # ~4 min at 1M

For each of the scale benchmark's text queries: its hard filter (the plain list) and that filter narrowed to the
asked category and colour (hybrid.py's narrowed list), each searched for 50 hits with the query's text vector. The
index is laid out in memory by each order in turn, twice (nothing is saved), and each pass reports p50 / p99 and
whether both layouts gave the same hits. Writes benchmarks/results/layout.json (keyed by the home's size).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._scale_catalog import read_rows, sample_queries  # noqa: E402

from sveta.catalog.store import open_catalog  # noqa: E402
from sveta.engines.hybrid import _narrowed  # noqa: E402
from sveta.engines.intent import hard_filter  # noqa: E402
from sveta.engines.search import Searcher  # noqa: E402
from sveta.index.base import Filter  # noqa: E402
from sveta.index.meta import Columns  # noqa: E402
from sveta.settings import Settings  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
OUT = ROOT / "benchmarks" / "results" / "layout.json"


def by_category_and_gender(cols: Columns) -> np.ndarray:
    """Layout 1: live rows by category, gender, product (before colour was a key)."""
    rows = np.flatnonzero(cols.alive)
    keys = (cols.ids[rows], cols.product[rows], cols.codes["gender"][rows], cols.codes["category"][rows])
    return rows[np.lexsort(keys)]


LAYOUTS = {"layout 1": by_category_and_gender, "layout 2": Columns.layout_order}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    settings = Settings(data_dir=args.home, sync_every="0")
    searcher = Searcher(settings, open_catalog(settings.catalog_url))
    embedder: Any = searcher.embedder  # the home's tuned embedder: photos, and words through its text map
    work = []
    for query in sample_queries(read_rows(MYNTRA), args.queries):
        intent = searcher.understand(query)
        if intent.empty:
            continue
        flt = hard_filter(intent, Filter())
        work.append((embedder.embed_texts([query])[:1], flt, _narrowed(intent, flt)))
    index: Any = searcher.index
    result: dict[str, Any] = {"gallery": len(index), "queries": len(work)}
    hits: dict[str, list[Any]] = {}
    for round_ in range(2):
        for name, order in LAYOUTS.items():
            with mock.patch.object(Columns, "layout_order", order):
                started = time.perf_counter()
                index._permute_to_layout()
                permute_s = time.perf_counter() - started
            plain, narrowed, found = _searches(index, work)
            result.setdefault(name, []).append(
                {"round": round_, "permute_s": round(permute_s, 1), "plain": _summary(plain)}
                | {"narrowed": _summary(narrowed), "narrowed_queries": len(narrowed)}
            )
            hits[name] = found
            print(name, result[name][-1], flush=True)
    result["same_hits"] = sum(a == b for a, b in zip(*hits.values(), strict=True))
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    results[str(len(index))] = result
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"same hits for {result['same_hits']} of {len(work)} queries")


def _searches(index: Any, work: list[Any]) -> tuple[list[float], list[float], list[Any]]:
    plain, narrowed, found = [], [], []
    for vector, flt, narrow in work:
        started = time.perf_counter()
        hits = index.search(vector, 50, flt)
        plain.append((time.perf_counter() - started) * 1000)
        if narrow is not None:
            started = time.perf_counter()
            hits = hits + index.search(vector, 50, narrow)
            narrowed.append((time.perf_counter() - started) * 1000)
        found.append([[h.id for h in row] for row in hits])
    return plain, narrowed, found


def _summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)), 1), "p99_ms": round(float(np.percentile(times, 99)), 1)}


if __name__ == "__main__":
    main()
