"""What recording a search for the insights costs: p50 of GET /api/search/text with recording on and off (issue 18).

    .venv/bin/python benchmarks/bench_insights.py [--home /tmp/demo-new] [--rounds 15]
        # ~1 min on 2 cores

Needs a demo data home (default /tmp/demo-new; ``SVETA_DATA_DIR=/tmp/demo-new .venv/bin/sveta demo`` makes one): the
9,583 shared Myntra products, their ``tuned:catalog`` index and trained model. Its catalog is copied into a scratch
home (/tmp/sveta-insights-bench; the index, models and embeddings are linked, not copied), so the demo home is never
migrated or written.

In one process, two apps over that one catalog: SVETA_INSIGHTS_DAYS=90 (each search is one more write transaction,
an INSERT into search_events) and SVETA_INSIGHTS_DAYS=0 (nothing recorded). Each round asks every query of QUERIES of
both apps, in alternating order, through FastAPI's in-process client; the first round warms both and is not counted.
Also timed: ``record_search`` alone. Writes benchmarks/results/insights.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "insights.json"
SCRATCH = Path("/tmp/sveta-insights-bench")
QUERIES = [
    "navy blue formal shirt", "red dress", "nike shoes under 2000", "black jeans for men", "white sneakers",
    "women handbag", "puma t-shirt", "blue denim jacket", "kurta for women", "sports shoes not black",
    "grey track pants", "watch for men", "pink top", "leather belt", "sunglasses", "green casual shirt",
    "formal shoes brown", "yellow kurta", "adidas socks", "flip flops",
]  # fmt: skip


def scratch_home(demo: Path) -> Path:
    """The demo's catalog copied (it is migrated and written here), its index, models and embeddings linked."""
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir(parents=True)
    shutil.copy2(demo / "catalog.db", SCRATCH / "catalog.db")
    for name in ("index", "models", "embeddings"):
        if (demo / name).exists():
            (SCRATCH / name).symlink_to(demo / name)
    return SCRATCH


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(client: Any, query: str) -> float:
    started = time.perf_counter()
    response = client.get("/api/search/text", params={"q": query, "k": 10})
    ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{query!r}: {response.status_code} {response.text[:300]}")
    return ms


def run(home: Path, rounds: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from sveta.api import create_app
    from sveta.catalog.insights import SearchRecord, record_search
    from sveta.catalog.store import open_catalog
    from sveta.settings import Settings

    on = Settings(_env_file=None, data_dir=home, sync_every="0", insights_days=90)
    off = on.model_copy(update={"insights_days": 0})
    times: dict[str, list[float]] = {"on": [], "off": []}
    with TestClient(create_app(on)) as with_records, TestClient(create_app(off)) as without:
        clients = {"on": with_records, "off": without}
        for n in range(rounds + 1):
            for i, query in enumerate(QUERIES):
                order = ("on", "off") if (n + i) % 2 == 0 else ("off", "on")
                for name in order:
                    ms = timed(clients[name], query)
                    if n:  # round 0 warms both apps (models, index, caches)
                        times[name].append(ms)
    catalog = open_catalog(on.catalog_url)
    record = SearchRecord("text", "api", "navy blue formal shirt", 10, 12.0, {"colour": "Navy Blue"}, None)
    record_ms = []
    for _ in range(200):
        started = time.perf_counter()
        record_search(catalog, 90, record)
        record_ms.append((time.perf_counter() - started) * 1000)
    catalog.engine.dispose()
    summary = {
        name: {"p50_ms": round(statistics.median(v), 2), "p90_ms": round(percentile(v, 0.9), 2), "n": len(v)}
        for name, v in times.items()
    }
    return {
        "what": "GET /api/search/text p50 with SVETA_INSIGHTS_DAYS=90 (each search recorded) vs 0 (none), one process",
        "catalog": str(home),
        "queries": len(QUERIES),
        "rounds": rounds,
        "search": summary,
        "overhead_p50_ms": round(summary["on"]["p50_ms"] - summary["off"]["p50_ms"], 2),
        "overhead_p50_share": round(summary["on"]["p50_ms"] / summary["off"]["p50_ms"] - 1, 4),
        "record_search_alone": {
            "p50_ms": round(statistics.median(record_ms), 3),
            "p90_ms": round(percentile(record_ms, 0.9), 3),
        },
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/demo-new"), help="A demo data home (read only).")
    parser.add_argument("--rounds", type=int, default=15, help="Timed passes over the queries (after one warm-up).")
    args = parser.parse_args()
    if not (args.home / "catalog.db").is_file() or not (args.home / "index").is_dir():
        raise SystemExit(f"no demo home at {args.home}: SVETA_DATA_DIR={args.home} .venv/bin/sveta demo makes one")
    result = run(scratch_home(args.home), args.rounds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    on, off = result["search"]["on"], result["search"]["off"]
    print(f"recording on : p50 {on['p50_ms']:.1f} ms, p90 {on['p90_ms']:.1f} ms ({on['n']} searches)")
    print(f"recording off: p50 {off['p50_ms']:.1f} ms, p90 {off['p90_ms']:.1f} ms ({off['n']} searches)")
    print(f"overhead at p50: {result['overhead_p50_ms']:+.2f} ms ({100 * result['overhead_p50_share']:+.1f}%)")
    print(f"record_search alone: p50 {result['record_search_alone']['p50_ms']:.2f} ms; wrote {OUT}")


if __name__ == "__main__":
    main()
