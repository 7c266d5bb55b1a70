"""search_text p50 with 0 and with 100 active merchandising rules, in one process (issue 18 item 5).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_rules.py --repeats 8   (from the checkout; -> results/rules.json)

A copy of the 100k-product catalog that benchmarks/bench_hybrid.py caches in /tmp/sveta-hybrid-100k (its index and
models linked, read only) under /tmp/rules-bench; the 50 queries of bench_hybrid, each query's text-map vector made
once beforehand (as bench_hybrid does), so the timings are the search itself: rules read, ranking, rules applied.
Configurations, alternating per query (both rule sets are stored, each in force in a window of its own, and the
searcher reads the rules in force at the configuration's moment):
  none:     no rules
  idle100:  100 rules, none of which can apply to these queries (pins, boosts and hides for other words; product
            pins in categories not searched): the rules are read and checked, nothing more
  busy100:  70 of those, and 30 that apply to every query (20 brand boosts / buries everywhere, 10 product hides):
            the engine ranks k + 10 candidates and re-orders them
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from benchmarks.bench_hybrid import CACHE, QUERIES, Precomputed

from sveta.catalog.queries import brand_names
from sveta.catalog.rules import RuleSpec, active_rules, add_rule, list_rules, remove_rule
from sveta.catalog.store import open_catalog
from sveta.embed.base import get_embedder
from sveta.engines.search import Searcher
from sveta.settings import Settings

HOME = Path("/tmp/rules-bench")
K = 10


def home() -> Path:
    if not (HOME / "catalog.db").is_file():
        HOME.mkdir(exist_ok=True)
        shutil.copy(CACHE / "catalog.db", HOME / "catalog.db.tmp")
        (HOME / "catalog.db.tmp").rename(HOME / "catalog.db")
        for name in ("index", "models"):
            (HOME / name).symlink_to(CACHE / name)
    return HOME


def specs(kind: str, brands: list[str], n_products: int, rng: random.Random) -> list[RuleSpec]:
    """The rule set of a configuration: 100 rules in each but "none"."""
    if kind == "none":
        return []
    product = lambda: str(rng.randint(1, n_products))  # noqa: E731
    out = [RuleSpec("pin", product(), scope_kind="query", scope=f"campaign {i}", position=1 + i % 5) for i in range(40)]
    cats = ["Saree", "Kurta", "Lipstick", "Perfume", "Nail Polish"]  # none is a category the queries ask for
    out += [RuleSpec("pin", product(), scope_kind="category", scope=cats[i % 5]) for i in range(30)]
    if kind == "idle100":  # for other words still: nothing here can apply to the timed queries
        out += [RuleSpec("boost", product(), scope_kind="query", scope=f"sale {i}") for i in range(20)]
        out += [RuleSpec("hide", product(), scope_kind="query", scope=f"gone {i}") for i in range(10)]
    else:  # everywhere: every query ranks k + 10 candidates and re-orders them
        out += [RuleSpec("boost" if i % 2 else "bury", rng.choice(brands), target_kind="brand") for i in range(20)]
        out += [RuleSpec("hide", product()) for _ in range(10)]
    assert len(out) == 100, len(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(data_dir=home())
    catalog = open_catalog(settings.catalog_url)
    for r in list_rules(catalog, expired=True):
        remove_rule(catalog, r.rule.id)
    searcher = Searcher(settings, catalog)
    index = searcher.index
    embed_texts = get_embedder(index.config.embedder, settings).embed_texts  # type: ignore[attr-defined]
    texts = [t for items in QUERIES.values() for t in items]
    vectors = {t: embed_texts([t])[0].astype(np.float32) for t in texts}
    searcher._embedder = Precomputed(index.config.embedder, vectors)  # type: ignore[assignment]
    brands = brand_names(catalog)
    rng = random.Random(18)
    # Both rule sets stay in the table (200 rows), each in force in a window of its own; a configuration is the
    # moment the rules are read at, so the three alternate per query with the real read of the real table.
    now = datetime.now(UTC)
    at = {"none": now, "idle100": now + timedelta(days=10, hours=1), "busy100": now + timedelta(days=20, hours=1)}
    for kind, start in (("idle100", now + timedelta(days=10)), ("busy100", now + timedelta(days=20))):
        for spec in specs(kind, brands, 100_000, rng):
            add_rule(catalog, replace(spec, starts_at=start, ends_at=start + timedelta(days=1)))
    assert [len(active_rules(catalog, t)) for t in at.values()] == [0, 100, 100]
    times: dict[str, list[float]] = {kind: [] for kind in at}
    read_ms: dict[str, list[float]] = {kind: [] for kind in at}
    for rep in range(args.repeats + 1):  # the first pass warms up and is not kept
        order = list(at) if rep % 2 == 0 else list(reversed(at))
        for text in texts:
            for kind in order:
                searcher.rules = lambda t=at[kind]: active_rules(catalog, t)  # type: ignore[method-assign]
                start = time.perf_counter()
                searcher.search_text(text, K)
                elapsed = time.perf_counter() - start
                start = time.perf_counter()
                active_rules(catalog, at[kind])
                read = time.perf_counter() - start
                if rep:
                    times[kind].append(elapsed * 1000)
                    read_ms[kind].append(read * 1000)
    for r in list_rules(catalog, expired=True):
        remove_rule(catalog, r.rule.id)
    print(f"100,000 products; {len(texts)} queries x {args.repeats}; search_text(k={K}), text-map vectors precomputed")
    print("configurations alternate per query; merch_rules holds 200 rows, 0 or 100 of them in force")
    print(f"{'rules':10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'active_rules p50 ms':>20}")
    result: dict[str, dict[str, float]] = {}
    for kind, ts in times.items():
        q = np.percentile(ts, [50, 90, 99])
        print(f"{kind:10} {q[0]:8.2f} {q[1]:8.2f} {q[2]:8.2f} {statistics.median(read_ms[kind]):20.3f}")
        result[kind] = {"p50_ms": round(q[0], 2), "p90_ms": round(q[1], 2), "p99_ms": round(q[2], 2),
                        "rules_read_p50_ms": round(statistics.median(read_ms[kind]), 3)}  # fmt: skip
    out = Path(__file__).resolve().parent / "results" / "rules.json"
    out.write_text(
        json.dumps({"products": 100_000, "queries": len(texts), "repeats": args.repeats, **result}, indent=1)
    )


if __name__ == "__main__":
    main()
