"""What the keyword index costs at ingest: the shared styles.csv into fresh SQLite catalogs, with and without it.

    .venv/bin/python benchmarks/bench_keywords.py [REPEATS]      # ~1 min on 2 cores (REPEATS: 3)

Ingests ../shared/datasets/myntra-small/styles.csv (9,583 products) into a fresh SQLite catalog with the keyword
index kept in step (the default) and without it (``open_catalog(url, keyword_index=False)``), alternating, in one
process, and keeps each side's fastest run. Issue 15 allows the index at most 30% more ingest time. Also times
``rebuild_keywords`` over the whole catalog (what migration 0002 does to an existing one) and a few queries.
Writes benchmarks/results/keywords.json.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from sveta.catalog.keyword_index import rebuild_keywords
from sveta.catalog.keyword_search import keyword_search
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest

ROOT = Path(__file__).resolve().parents[1]
MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
OUT = ROOT / "benchmarks" / "results" / "keywords.json"
QUERIES = ["red dress", "nike running shoes", "puma track pants", "navy blue formal shirt", "casual"]
LIMIT = 1.30


def ingest(folder: Path, *, keyword_index: bool) -> tuple[float, CatalogStore]:
    """Seconds to ingest the whole styles.csv into a fresh catalog, and the catalog."""
    catalog = open_catalog(f"sqlite:///{folder}/catalog.db", keyword_index=keyword_index)
    reader = FeedReader(MYNTRA / "styles.csv", images_dir=MYNTRA / "images")
    started = time.perf_counter()
    report = run_ingest(
        catalog, name="myntra", kind="csv", location=str(MYNTRA), records=reader.records(), state=reader.state
    )
    seconds = time.perf_counter() - started
    assert report.new == catalog.count_products() and report.status == "ok", report
    return seconds, catalog


def query_ms(catalog: CatalogStore) -> dict[str, float]:
    """Milliseconds per query (the best of 5), top 10."""
    timings = {}
    for query in QUERIES:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            keyword_search(catalog, [query], limit=10)
            best = min(best, time.perf_counter() - started)
        timings[query] = round(best * 1000, 2)
    return timings


def main(repeats: int) -> None:
    runs: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="sveta-keywords-") as tmp:
        for i in range(repeats):
            for side in ("without", "with"):
                folder = Path(tmp) / f"{side}-{i}"
                seconds, catalog = ingest(folder, keyword_index=side == "with")
                runs[side].append(round(seconds, 3))
                print(f"{side:>7} the keyword index: {seconds:.2f} s", flush=True)
                if i == repeats - 1 and side == "with":
                    products, timings = catalog.count_products(), query_ms(catalog)
                    started = time.perf_counter()
                    with catalog.engine.begin() as conn:
                        rebuild_keywords(conn)
                    rebuild_s = time.perf_counter() - started
                catalog.engine.dispose()
    without, with_index = min(runs["without"]), min(runs["with"])
    report = {
        "products": products,
        "repeats": repeats,
        "ingest_without_keyword_index_s": without,
        "ingest_with_keyword_index_s": with_index,
        "ratio": round(with_index / without, 3),
        "limit": LIMIT,
        "within_limit": with_index / without <= LIMIT,
        "runs_s": runs,
        "rebuild_keyword_index_s": round(rebuild_s, 3),
        "query_ms_top10": timings,
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
