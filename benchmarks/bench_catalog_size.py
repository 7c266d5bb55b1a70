"""Catalog size per product on SQLite and PostgreSQL: the shared catalog ingested, then `copy_catalog` to Postgres.

    .venv/bin/python benchmarks/bench_catalog_size.py            # ~2 min on 2 cores; needs PostgreSQL's server binaries

Ingests ../shared/datasets/myntra-small (9,583 products with their seller and text attributes) into SQLite, copies it
into a throwaway PostgreSQL server (tests/pg_server.py), and reports bytes per product on each, tables and indexes
included, scaled to a million products. Writes benchmarks/results/catalog-size.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pg_server: the throwaway PostgreSQL the test suite uses

from sveta.catalog.copy import copy_catalog, table_counts  # noqa: E402
from sveta.catalog.store import open_catalog  # noqa: E402
from sveta.ingest.feeds import FeedReader  # noqa: E402
from sveta.ingest.pipeline import run_ingest  # noqa: E402
from tests.pg_server import postgres_server  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
OUT = ROOT / "benchmarks" / "results" / "catalog-size.json"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sveta-size-") as tmp, postgres_server() as pg_url:
        db = Path(tmp) / "catalog.db"
        source = open_catalog(f"sqlite:///{db}")
        reader = FeedReader(MYNTRA / "styles.csv", images_dir=MYNTRA / "images")
        started = time.perf_counter()
        run_ingest(
            source, name="myntra", kind="csv", location=str(MYNTRA), records=reader.records(), state=reader.state
        )
        ingest_s = time.perf_counter() - started
        with source.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("VACUUM"))
        counts = table_counts(source)
        target = open_catalog(pg_url)
        with target.engine.connect() as conn:
            empty = conn.scalar(text("SELECT pg_database_size(current_database())"))
        target.engine.dispose()
        started = time.perf_counter()
        copy_catalog(source, pg_url)
        copy_s = time.perf_counter() - started
        target = open_catalog(pg_url)
        with target.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            full = conn.scalar(text("SELECT pg_database_size(current_database())"))
        target.engine.dispose()
        source.engine.dispose()
        n = counts["products"]
        sqlite_bytes, pg_bytes = db.stat().st_size, full - empty
    report = {
        "products": n,
        "rows": counts,
        "ingest_s": round(ingest_s, 1),
        "copy_to_postgres_s": round(copy_s, 1),
        "sqlite_bytes_per_product": round(sqlite_bytes / n),
        "postgres_bytes_per_product": round(pg_bytes / n),
        "sqlite_gb_per_million_products": round(sqlite_bytes / n * 1e6 / 1e9, 2),
        "postgres_gb_per_million_products": round(pg_bytes / n * 1e6 / 1e9, 2),
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
