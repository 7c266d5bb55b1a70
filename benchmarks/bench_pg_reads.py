"""PostgreSQL reads at scale, each fix against what it replaced, in one process: the product page's index and the
keyword search's per-query planning.

    .venv/bin/python benchmarks/bench_pg_reads.py --size 100000      # ~7 min: ingest, re-sync, the two A/Bs
    .venv/bin/python benchmarks/bench_pg_reads.py --size 1000000     # ~55 min, 45 of them the ingest

Starts a throwaway PostgreSQL server (as the tests do), ingests the scale benchmark's feed of ``--size`` products
(``bench_scale.py`` writes them under ``--work``/feeds), then its 1%-changed re-sync, as ``bench_scale.py`` does
before its reads. Then:
- **page**: the bench's product pages (category + gender, sometimes a price cap and in-stock), with the page index
  as migration 0005 made it and as migration 0007 makes it (category and gender INCLUDEd), the index swapped between
  rounds (two rounds, two passes each: the first pass reads cold pages);
- **keyword**: the bench's keyword queries, with and without the transaction-local settings of
  ``keyword_search._planned_per_query``, alternated query by query, two passes, and how many queries give the same
  list on both passes.
Writes benchmarks/results/pg-reads.json (keyed by size).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pg_server (the throwaway PostgreSQL) and benchmarks.bench_scale

from benchmarks._scale_catalog import read_rows, sample_queries  # noqa: E402
from benchmarks.bench_scale import _ingest, _page_queries  # noqa: E402

from sveta.catalog import keyword_search as keywords  # noqa: E402
from sveta.catalog.browse import list_products  # noqa: E402
from sveta.catalog.store import CatalogStore, open_catalog  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
OUT = ROOT / "benchmarks" / "results" / "pg-reads.json"
PAGE_INDEX = "CREATE INDEX ix_products_category_gender_page ON products"
PAGE_INDEXES = {
    "0005": f"{PAGE_INDEX} (lower(category), lower(gender), id, available, price_min)",
    "0007": f"{PAGE_INDEX} (lower(category), lower(gender), id, available, price_min) INCLUDE (category, gender)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/sveta-scale"))
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    from tests.pg_server import postgres_server

    rows = read_rows(MYNTRA)
    feed = args.work / "feeds" / f"{args.size}.jsonl"
    changed = feed.with_name(f"{args.size}-changed.jsonl")
    for path in (feed, changed):  # both before a 45-minute ingest
        if not path.is_file():
            sys.exit(f"no feed {path}: run benchmarks/bench_scale.py --sizes {args.size} first (it writes the feeds)")
    with postgres_server() as url:
        catalog = open_catalog(url)
        result: dict[str, Any] = {"ingest_s": round(_ingest(catalog, feed)[0], 1)}
        result["resync_changed_s"] = round(_ingest(catalog, changed)[0], 1)
        print(f"ingested {args.size:,} in {result['ingest_s']} s", flush=True)
        result["page"] = _pages(catalog, rows, args.queries)
        result["keyword"] = _keywords(catalog, rows, args.queries)
        catalog.engine.dispose()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    results[str(args.size)] = result
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(result, indent=1))


def _pages(catalog: CatalogStore, rows: list[Any], n: int) -> dict[str, Any]:
    pages = _page_queries(rows, random.Random(3), n)
    out: dict[str, Any] = {}
    for round_ in range(2):
        for name, ddl in PAGE_INDEXES.items():
            # analysed as migration 0007 leaves it: an expression index's statistics are the index's own
            _autocommit(catalog, "DROP INDEX IF EXISTS ix_products_category_gender_page", ddl, "ANALYZE products")
            for pass_ in range(2):
                times = _timed([functools.partial(list_products, catalog, q, 50, off) for q, off in pages])
                out.setdefault(name, []).append(_summary(times) | {"round": round_, "pass": pass_})
                print(f"page, index {name}, round {round_} pass {pass_}: {out[name][-1]}", flush=True)
    return out


def _keywords(catalog: CatalogStore, rows: list[Any], n: int) -> dict[str, Any]:
    queries = sample_queries(rows, n)
    variants: dict[str, Callable[[Any], None]] = {"before": lambda conn: None, "after": keywords._planned_per_query}
    out: dict[str, Any] = {k: [] for k in variants}
    lists: dict[str, list[list[list[int]]]] = {k: [] for k in variants}
    for pass_ in range(2):
        times: dict[str, list[float]] = {k: [] for k in variants}
        found: dict[str, list[list[int]]] = {k: [] for k in variants}
        for i, query in enumerate(queries):
            for name in list(variants)[:: 1 if i % 2 == 0 else -1]:  # each goes first on every other query
                with mock.patch.object(keywords, "_planned_per_query", variants[name]):
                    started = time.perf_counter()
                    hits = keywords.keyword_search(catalog, [query], limit=10)
                    times[name].append((time.perf_counter() - started) * 1000)
                found[name].append([h.product_id for h in hits])
        for name in variants:
            out[name].append(_summary(times[name]) | {"pass": pass_})
            lists[name].append(found[name])
        print(f"keyword, pass {pass_}: {[out[k][-1] for k in variants]}", flush=True)
    for name in variants:
        out[f"{name}_same_list_both_passes"] = sum(a == b for a, b in zip(*lists[name], strict=True))
    return out


def _autocommit(catalog: CatalogStore, *statements: str) -> None:
    with catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in statements:
            conn.execute(text(statement))


def _timed(calls: list[Callable[[], Any]]) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)), 1), "p99_ms": round(float(np.percentile(times, 99)), 1)}


if __name__ == "__main__":
    main()
