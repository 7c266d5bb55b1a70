"""Keyword ranking in a large catalog: which words bm25 may count, by P@10 against the seller's labels and by time.

    .venv/bin/python benchmarks/bench_keyword_ranking.py --home /tmp/sveta-scale/sqlite-1000000 --seed 11
    .venv/bin/python benchmarks/bench_keyword_ranking.py --home ... --seed 12 --queries 200   # the test queries, once

Reads a SQLite home kept by ``bench_scale.py --keep`` (opening it migrates an older one; nothing else is written).
Each query is one of the scale benchmark's shapes (colour + type, brand + type, gender + occasion + type, colour +
gender + type) made from a real row of the shared data, and a result is right when the product's seller labels say
what the query asks (its brand for a brand). Every rule runs on every query, alternated in one process (the order
turns with each query, so that no rule always reads a query's pages first), twice, both passes timed: ``all`` (bm25
counts every word), ``half`` (words in over half the catalog are left out of the ranking, the rule before
``RANKED_DOCS_AT_MOST``) and ``docs:N`` (words in over N products are left out, the shipped rule at N = 50,000).
Seed 11 chose the shipped N; seed 12 is the held-out set, read once. Writes benchmarks/results/keyword-ranking.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._scale_catalog import read_rows  # noqa: E402

from sveta.catalog import keyword_search as module  # noqa: E402
from sveta.catalog.store import CatalogStore, open_catalog  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
OUT = ROOT / "benchmarks" / "results" / "keyword-ranking.json"
RULES: dict[str, dict[str, int]] = {
    "all": {"UNRANKED_COMMON_FROM": 10**12},
    "half": {"RANKED_DOCS_AT_MOST": 10**12},
    "docs:100000": {"RANKED_DOCS_AT_MOST": 100_000},
    "docs:50000": {"RANKED_DOCS_AT_MOST": 50_000},
    "docs:20000": {"RANKED_DOCS_AT_MOST": 20_000},
}


def queries(seed: int, n: int) -> list[tuple[str, dict[str, str]]]:
    """``n`` queries and, for each, the seller labels a right result has."""
    rng, rows, out = random.Random(seed), read_rows(MYNTRA), []
    for _ in range(n):
        r = rng.choice(rows)
        brand = r.title.split()[0]
        shapes = [
            (f"{r.colour} {r.article}", {"colour": r.colour, "category": r.article}),
            (f"{brand} {r.article}", {"brand": brand, "category": r.article}),
            (f"{r.gender} {r.usage} {r.article}", {"gender": r.gender, "occasion": r.usage, "category": r.article}),
            (f"{r.colour} {r.gender} {r.article}", {"colour": r.colour, "gender": r.gender, "category": r.article}),
        ]
        words, wanted = rng.choice(shapes)
        out.append((words.lower().strip(), wanted))
    return out


def labels(catalog: CatalogStore, ids: list[int]) -> dict[int, dict[str, str]]:
    """Each product's seller labels and brand."""
    out: dict[int, dict[str, str]] = {i: {} for i in ids}
    chosen = {"ids": json.dumps(ids)}
    with catalog.session() as s:
        seller = "SELECT product_id, name, value FROM attributes WHERE origin = 'seller' AND product_id IN"
        for pid, name, value in s.execute(text(f"{seller} (SELECT value FROM json_each(:ids))"), chosen):
            out[pid][name] = value.lower()
        brands = "SELECT id, brand FROM products WHERE id IN (SELECT value FROM json_each(:ids))"
        for pid, brand in s.execute(text(brands), chosen):
            out[pid]["brand"] = (brand or "").lower()
    return out


def run(catalog: CatalogStore, asked: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """Per rule: p50 / p99 ms over both passes, P@10 and the top 10's overlap with ``all``."""
    times: dict[str, list[float]] = {r: [] for r in RULES}
    right: dict[str, list[float]] = {r: [] for r in RULES}
    overlap: dict[str, list[float]] = {r: [] for r in RULES}
    for words, _ in asked[:10]:  # warm the page cache
        module.keyword_search(catalog, [words], limit=10)
    for rep in range(2):
        for words, wanted in asked:
            tops = {}
            turn = len(times["all"]) % len(RULES)
            for rule, constants in [*RULES.items()][turn:] + [*RULES.items()][:turn]:
                with ExitStack() as stack:
                    for name, value in constants.items():
                        stack.enter_context(mock.patch.object(module, name, value))
                    started = time.perf_counter()
                    hits = module.keyword_search(catalog, [words], limit=10)
                    times[rule].append((time.perf_counter() - started) * 1000)
                tops[rule] = [h.product_id for h in hits]
            if rep == 0:
                found = labels(catalog, sorted({p for top in tops.values() for p in top}))
                for rule, top in tops.items():
                    ok = [all(found[p].get(k) == v.lower() for k, v in wanted.items()) for p in top]
                    right[rule].append(float(np.mean(ok)) if ok else 0.0)
                    overlap[rule].append(len(set(top) & set(tops["all"])) / max(1, len(tops["all"])))
    return {
        rule: {
            "p50_ms": round(float(np.percentile(times[rule], 50)), 1),
            "p99_ms": round(float(np.percentile(times[rule], 99)), 1),
            "p_at_10": round(float(np.mean(right[rule])), 3),
            "overlap_at_10_with_all": round(float(np.mean(overlap[rule])), 3),
        }
        for rule in RULES
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a SQLite home kept by bench_scale.py --keep")
    parser.add_argument("--seed", type=int, default=11, help="11: the queries rules are chosen on; 12: held out")
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    catalog = open_catalog(f"sqlite:///{args.home / 'catalog.db'}")
    gallery = catalog.count_products()
    result = run(catalog, queries(args.seed, args.queries))
    for rule, r in result.items():
        print(
            f"{rule:12s} p50 {r['p50_ms']:6.1f} p99 {r['p99_ms']:6.1f} ms  P@10 {r['p_at_10']:.3f}  "
            f"top-10 overlap with all {r['overlap_at_10_with_all']:.3f}"
        )
    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    saved[f"seed-{args.seed}"] = {"gallery": gallery, "queries": args.queries, "rules": result}
    args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"gallery {gallery:,} products; wrote {args.out}")


if __name__ == "__main__":
    main()
