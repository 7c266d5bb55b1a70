"""Several writers on one catalog at once, on SQLite and PostgreSQL: lock errors users saw, writes lost, retries.

    .venv/bin/python benchmarks/bench_writers.py     # ~2-4 min on 2 cores; needs PostgreSQL's server binaries

The scenario of tests/test_concurrent_writers.py, bigger (tests/writers_harness.py): `sveta ingest csv` processes
on their own feeds, threads writing through the real API over HTTP (registering the CLI's sources, one another's
at the same moment, and their own feeds, which they crawl), one pass of `sveta serve`'s sync in the API's process
(re-crawl, photos fetched over local HTTP, index) and a tagging process rewriting every product's photo attributes
round after round. Then every write that reported success is looked for in the database. Writes
benchmarks/results/writers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.*: the scenario and the throwaway PostgreSQL the test suite uses

from tests.pg_server import postgres_server  # noqa: E402
from tests.writers_harness import Plan, run  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "writers.json"
KEYS = ("writers", "writes_attempted", "writes_committed", "lock_errors_seen_by_users", "lost_writes", "retries_taken")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", type=int, default=4, help="`sveta ingest csv` processes")
    parser.add_argument("--api-threads", type=int, default=4, help="threads writing through the API")
    parser.add_argument("--api-feeds", type=int, default=2, help="feeds each API thread registers and crawls")
    parser.add_argument("--rows", type=int, default=250, help="products per feed")
    parser.add_argument("--races", type=int, default=10, help="names every API thread registers at the same moment")
    parser.add_argument("--taggers", type=int, default=2, help="tagging processes (rewriting the same products)")
    parser.add_argument("--tag-rounds", type=int, default=8, help="rounds of each tagging process")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    plan = Plan(
        cli=args.cli, api_threads=args.api_threads, api_feeds=args.api_feeds, rows=args.rows, races=args.races,
        taggers=args.taggers, tag_rounds=args.tag_rounds, timeout_s=900,
    )  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory(prefix="sveta-writers-") as tmp:
        results["sqlite"] = run(plan, f"sqlite:///{tmp}/sqlite/catalog.db", Path(tmp) / "sqlite").as_dict()
        _print(results["sqlite"])
        with postgres_server() as url:
            results["postgresql"] = run(plan, url, Path(tmp) / "postgresql").as_dict()
        _print(results["postgresql"])
    payload = {
        "command": " ".join([".venv/bin/python benchmarks/bench_writers.py", *sys.argv[1:]]),
        "plan": asdict(plan),
        **{db: {k: r[k] for k in KEYS} | {k: v for k, v in r.items() if k not in KEYS} for db, r in results.items()},
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


def _print(result: dict[str, object]) -> None:
    print(f"{result['database']}: " + ", ".join(f"{k.replace('_', ' ')} {result[k]}" for k in KEYS), flush=True)


if __name__ == "__main__":
    main()
