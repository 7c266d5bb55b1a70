"""ms per `sveta complete` query at 10k items, once loaded: real catalog items, replicated up to --items."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sveta.catalog.store import open_catalog
from sveta.engines.complete import Completer
from sveta.index.catalog_index import open_catalog_index
from sveta.settings import Settings

COLUMNS = ("product_ids", "category", "slot", "gender", "colour", "hue", "neutral", "colour_known", "price")
MORE = ("available", "occasion", "season", "kid", "loud", "vectors", "has_vector")


def replicate(completer: Completer, items: int) -> None:
    """Tile every per-product column up to ``items`` rows (copies keep their product id: cards still resolve)."""
    a = completer.arrays
    reps = -(-items // len(a))
    for name in (*COLUMNS, *MORE):
        setattr(a, name, np.concatenate([getattr(a, name)] * reps)[:items])
    a.colour_names = (a.colour_names * reps)[:items]
    if completer.learned is not None:  # the trained outfit model's rows too
        for name in ("vectors", "has_vector"):
            setattr(completer.learned, name, np.concatenate([getattr(completer.learned, name)] * reps)[:items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("products", nargs="*", default=["10381", "10003"], help="source ids to complete")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    settings = Settings()
    start = time.perf_counter()
    catalog = open_catalog(settings.catalog_url)
    completer = Completer(catalog, open_catalog_index(settings, create=False), settings)
    loaded = len(completer.arrays)
    load_s = time.perf_counter() - start
    replicate(completer, args.items)
    pieces = [completer.piece_of_product(p) for p in args.products]
    completer.complete(pieces[0])  # warm-up
    scoring, total = [], []
    for n in range(args.repeat):
        t = time.perf_counter()
        result = completer.complete(pieces[n % len(pieces)], 3)
        total.append((time.perf_counter() - t) * 1000)
        scoring.append(result.ms)
    print(
        f"catalog {loaded} items (loaded in {load_s:.2f} s, outfit model: {completer.learned is not None}), "
        f"replicated to {len(completer.arrays)}; "
        f"{args.repeat} queries: scoring + picks median {statistics.median(scoring):.1f} ms "
        f"(p95 {np.percentile(scoring, 95):.1f}); with the result cards median {statistics.median(total):.1f} ms "
        f"(p95 {np.percentile(total, 95):.1f})"
    )


if __name__ == "__main__":
    main()
