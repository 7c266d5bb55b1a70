"""`sveta shopify push` on a whole catalog against the fake Admin API: dry run, --apply, rerun; requests, waits, time.

    .venv/bin/python benchmarks/bench_shopify_push.py --home /tmp/demo-ft     # the 9,583-product demo: ~1-2 min

The catalog is copied (SQLite backup) into a temp home, so the journal the push writes stays there. The fake store
(tests/shopify_admin_server.py) holds every product's handle, sveta's metafields none; its bucket is Shopify's
standard plan (2,000 points, 100 a second restored) sped up by --speed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.*: the fake Admin API the test suite uses

from sveta.catalog.store import open_catalog  # noqa: E402
from sveta.ops.export import chosen_products  # noqa: E402
from tests.shopify_admin_server import AdminStore, serve_admin  # noqa: E402

TOKEN = "shpat_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="a data home with a catalog.db (not changed)")
    parser.add_argument("--speed", type=float, default=10.0, help="the fake bucket restores this many times faster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sveta-push-") as tmp:
        home = Path(tmp)
        with sqlite3.connect(args.home / "catalog.db") as src, sqlite3.connect(home / "catalog.db") as dst:
            src.backup(dst)
        catalog = open_catalog(f"sqlite:///{home / 'catalog.db'}")
        handles = [p.handle for p in chosen_products(catalog) if p.values]
        catalog.engine.dispose()
        products = {f"gid://shopify/Product/{1_000_000 + i}": h for i, h in enumerate(handles)}
        admin = AdminStore(products, TOKEN, maximum=2000.0, restore_rate=100.0 * args.speed)
        with serve_admin(admin) as url:
            runs = {name: _push(home, url, flags) for name, flags in
                    (("dry_run", []), ("apply", ["--apply"]), ("rerun", ["--apply"]))}  # fmt: skip
        writes = Counter(admin.writes.values())
    apply = runs["apply"]["report"]
    text = json.dumps({
        "command": " ".join([".venv/bin/python benchmarks/bench_shopify_push.py", *sys.argv[1:]]),
        "catalog_products": len(handles), "bucket": {"maximum": 2000, "restore_per_s": 100 * args.speed},
        "runs": runs, "writes_per_metafield": dict(writes),
        "at_100_points_per_s_s": round(apply["cost"]["actual"] / 100.0, 1),
    }, indent=1)  # fmt: skip
    print(text)
    (Path(__file__).resolve().parent / "results" / "shopify_push.json").write_text(text + "\n")


def _push(home: Path, url: str, flags: list[str]) -> dict[str, Any]:
    env = {**os.environ, "SVETA_DATA_DIR": str(home), "SVETA_ALLOWED_PRIVATE_HOSTS": "127.0.0.1", "T": TOKEN}
    command = [sys.executable, "-m", "sveta", "shopify", "push", url, "--token-env", "T", "--json", *flags]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = round(time.perf_counter() - started, 2)
    if done.returncode != 0:
        raise SystemExit(f"sveta shopify push {' '.join(flags)} failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["gone"] = len(report["gone"])  # counted: a catalog the store does not hold whole lists thousands
    return {"wall_s": wall, "report": report}


if __name__ == "__main__":
    main()
