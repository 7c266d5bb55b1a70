"""How each cost grows with the catalog: ingest, re-sync, index update, stats, browsing, search, complete, RSS, disk.

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes 2000,10000                      # SQLite, ~4 min
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes 2000,10000 --backends postgres  # ~4 min
    .venv/bin/python benchmarks/bench_scale.py --sizes 100000 --backends sqlite,postgres           # ~40 min (est.)
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000000 --backends sqlite                   # ~2 h (est.)
    .venv/bin/python benchmarks/bench_scale.py --show                  # the tables of what scale.json holds
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000000 --reuse  # a home kept by --keep (SQLite): measure
                                                                        # again an unchanged re-sync and the reads

Builds a catalog of each size from ../shared/datasets/myntra-small (titles recombined from real titles, the real
photos reused under new ids so that their embeddings come from the cache a demo home already holds, prices and 1-5
variants drawn from plausible ranges, all seeded) in a scratch data home per backend and size, on SQLite or on a
throwaway PostgreSQL server (tests/pg_server.py). At each size it measures, through the library calls the CLI and
the API make: ingest rate; a re-sync of the unchanged feed; a re-sync with 1% changed and 0.5% gone; the index
update after it; catalog stats; a filtered, paged product list; keyword and hybrid text search; ``similar``; photo
search; ``complete``; the RSS of a ``sveta serve`` process after warm-up; disk per product. It prints a table per
backend with the growth ratio from each size to the next, and merges its results (by backend and size) into
benchmarks/results/scale.json. The demo home (--demo) is only read: its models and embedding cache are copied.
Each latency measure stops after BUDGET_S once it has 20 samples (its p99 is then nearly its maximum).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pg_server (the throwaway PostgreSQL) and benchmarks._scale_catalog

from benchmarks._noisy_index import COSINE, build_settings  # noqa: E402
from benchmarks._scale_catalog import (  # noqa: E402
    ScaleFeedReader,
    base_home,
    link_base,
    read_rows,
    sample_queries,
    write_changed_feed,
    write_feed,
)
from benchmarks._scale_report import load_results, merge_result, table  # noqa: E402

from sveta.catalog.browse import ProductQuery, list_products  # noqa: E402
from sveta.catalog.keyword_search import keyword_search  # noqa: E402
from sveta.catalog.stats import catalog_stats  # noqa: E402
from sveta.catalog.store import CatalogStore, open_catalog  # noqa: E402
from sveta.engines.complete import Completer  # noqa: E402
from sveta.engines.hybrid import FUSION, keyword_words  # noqa: E402
from sveta.engines.search import Searcher  # noqa: E402
from sveta.errors import InputError  # noqa: E402
from sveta.index.catalog_index import sync_index  # noqa: E402
from sveta.ingest.pipeline import run_ingest  # noqa: E402
from sveta.settings import Settings  # noqa: E402
from tests.pg_server import postgres_server  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
OUT = ROOT / "benchmarks" / "results" / "scale.json"
BUDGET_S = 60.0  # at most this long per latency measure, so that a slow one at 1M cannot take an hour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,10000", help="catalog sizes, comma-separated")
    parser.add_argument("--backends", default="sqlite", help="sqlite, postgres or both, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="queries per latency measure")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sveta-scale"), help="scratch folder")
    parser.add_argument("--demo", type=Path, default=Path("/tmp/demo-new"), help="indexed demo home (only read)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", action="store_true", help="keep each size's data home (else removed)")
    parser.add_argument("--show", action="store_true", help="only print the tables of the results file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="SQLite: a home kept after its first ingest finished (e.g. a run that died later) goes on from there",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="SQLite homes kept by --keep: measure an unchanged re-sync and every read again, keep the rest",
    )
    args = parser.parse_args()
    if args.show:
        print("\n\n".join(table(b, results) for b, results in load_results(args.out).items()))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows = read_rows(MYNTRA)
    base = base_home(args.demo, args.work / "base")
    for backend in args.backends.split(","):
        results = {}
        for n in sizes:
            print(f"== {backend} {n:,} products", flush=True)
            before = load_results(args.out).get(backend, {}).get(str(n))
            results[n] = (
                reuse_size(backend, n, rows, before, args) if args.reuse else run_size(backend, n, rows, base, args)
            )
            merge_result(args.out, backend, n, results[n])
        print(table(backend, load_results(args.out).get(backend, {})), flush=True)


def run_size(backend: str, n: int, rows: list[Any], base: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every measure at one size on one backend, in a fresh data home."""
    home = args.work / f"{backend}-{n}"
    resumed = _first_ingest_s(home, n) if args.resume and backend == "sqlite" else None
    if resumed is None:
        shutil.rmtree(home, ignore_errors=True)
        link_base(base, home)
    feed = args.work / "feeds" / f"{n}.jsonl"
    if not feed.is_file():  # seeded: the same size always gives the same feed, so it is kept for the next run
        write_feed(feed, rows, n)
    changed = args.work / "feeds" / f"{n}-changed.jsonl"
    counts = write_changed_feed(feed, changed, changed=0.01, gone=0.005)
    server = postgres_server() if backend == "postgres" else nullcontext(None)
    with server as pg_url:
        settings = Settings(data_dir=home, database_url=pg_url, sync_every="0")
        catalog = open_catalog(settings.catalog_url)
        empty = _db_bytes(catalog) if resumed is None else 0  # resumed: the schema's few pages count as data
        result: dict[str, Any] = {"products": n, "feed_changes": counts, "replica_cosine": COSINE}
        result |= _syncs(catalog, settings, feed, changed, n, resumed)
        result["db_bytes"] = _db_bytes(catalog) - empty
        result |= _latencies(catalog, settings, rows, args.queries)
        result |= _serve_rss(settings, pg_url, rows)
        result |= _disk(settings, result["db_bytes"], n)
        catalog.engine.dispose()
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return result


def reuse_size(
    backend: str, n: int, rows: list[Any], before: dict[str, Any] | None, args: argparse.Namespace
) -> dict[str, Any]:
    """A kept home measured again (after a change to the read paths or the re-sync); ingest and index build kept."""
    home = args.work / f"{backend}-{n}"
    if backend != "sqlite" or before is None or not (home / "catalog.db").is_file():
        raise SystemExit(f"--reuse needs a SQLite home kept by --keep at {home} and its results in {args.out}")
    settings = Settings(data_dir=home, sync_every="0")
    catalog = open_catalog(settings.catalog_url)
    result = dict(before) | {"reused_home": True}
    build = build_settings(settings)
    if before.get("replica_cosine") != COSINE:  # built before replicas had noise: the first build again
        started = time.perf_counter()
        index = sync_index(catalog, build, rebuild=True)
        result["index_build_s"], result["index_build_report"] = time.perf_counter() - started, index.as_dict()
        result["replica_cosine"] = COSINE
        merge_result(args.out, backend, n, result)
        print(f"   index rebuilt with noisy replicas in {result['index_build_s']:.1f} s", flush=True)
    feed = args.work / "feeds" / f"{n}-changed.jsonl"  # the home's last feed
    print(f"   untimed: {_ingest(catalog, feed)[0]:.1f} s (a home stored before row digests adopts them)", flush=True)
    ingest_s, report = _ingest(catalog, feed)
    started = time.perf_counter()
    index = sync_index(catalog, build)
    result["resync_unchanged_ingest_s"], result["resync_unchanged_index_s"] = ingest_s, time.perf_counter() - started
    result["resync_unchanged_s"] = ingest_s + result["resync_unchanged_index_s"]
    result["resync_unchanged_report"] = {"unchanged": report.unchanged, "index": index.as_dict()}
    print(f"   re-sync {result['resync_unchanged_s']:.1f} s", flush=True)
    result |= _latencies(catalog, settings, rows, args.queries)
    result |= _serve_rss(settings, None, rows)
    result |= _disk(settings, _db_bytes(catalog), n)
    catalog.engine.dispose()
    return result


# -- writes -------------------------------------------------------------------------------------------


def _first_ingest_s(home: Path, n: int) -> float | None:
    """--resume: the seconds of a kept home's finished first ingest of ``n`` products (None: start afresh)."""
    if not (home / "catalog.db").is_file():
        return None
    catalog = open_catalog(f"sqlite:///{home / 'catalog.db'}")
    with catalog.engine.connect() as conn:
        runs = conn.execute(text("SELECT status, new, started_at, finished_at FROM crawl_runs ORDER BY id")).all()
    catalog.engine.dispose()
    if not runs or runs[0].status != "ok" or runs[0].new != n or len(runs) > 1:
        return None
    started, finished = (datetime.fromisoformat(str(t)) for t in (runs[0].started_at, runs[0].finished_at))
    return (finished - started).total_seconds()


def _syncs(
    catalog: CatalogStore, settings: Settings, feed: Path, changed: Path, n: int, resumed: float | None = None
) -> dict[str, Any]:
    """Ingest (or, resumed, the time of the home's first ingest), first index build, unchanged re-sync, changed
    re-sync (ingest, then the index update)."""
    out: dict[str, Any] = {"resumed_after_ingest": resumed is not None}
    build = build_settings(settings)  # replicas of one photo: near, not identical, vectors
    ingest_s = resumed if resumed is not None else _ingest(catalog, feed)[0]
    out["ingest_s"], out["ingest_ms_per_product"] = ingest_s, 1000 * ingest_s / n
    out["ingest_products_per_s"] = n / ingest_s
    started = time.perf_counter()
    index = sync_index(catalog, build)
    out["index_build_s"], out["index_build_report"] = time.perf_counter() - started, index.as_dict()
    ingest_s, report = _ingest(catalog, feed)
    started = time.perf_counter()
    index = sync_index(catalog, build)
    out["resync_unchanged_ingest_s"], out["resync_unchanged_index_s"] = ingest_s, time.perf_counter() - started
    out["resync_unchanged_s"] = out["resync_unchanged_ingest_s"] + out["resync_unchanged_index_s"]
    out["resync_unchanged_report"] = {"unchanged": report.unchanged, "index": index.as_dict()}
    ingest_s, report = _ingest(catalog, changed)
    started = time.perf_counter()
    index = sync_index(catalog, build)
    out["resync_changed_ingest_s"], out["index_update_s"] = ingest_s, time.perf_counter() - started
    out["resync_changed_s"] = out["resync_changed_ingest_s"] + out["index_update_s"]
    out["resync_changed_report"] = {"changed": report.changed, "gone": report.gone, "index": index.as_dict()}
    print(
        f"   ingest {out['ingest_s']:.1f} s, index {out['index_build_s']:.1f} s, "
        f"re-sync {out['resync_unchanged_s']:.1f} s, changed {out['resync_changed_s']:.1f} s",
        flush=True,
    )
    return out


def _ingest(catalog: CatalogStore, feed: Path) -> tuple[float, Any]:
    reader = ScaleFeedReader(feed)
    started = time.perf_counter()
    report = run_ingest(
        catalog, name="scale", kind="jsonl", location=str(feed), records=reader.rows(), state=reader.state
    )
    return time.perf_counter() - started, report


# -- reads --------------------------------------------------------------------------------------------


def _latencies(catalog: CatalogStore, settings: Settings, rows: list[Any], n: int) -> dict[str, Any]:
    """p50 / p99 of each read, each over ``n`` queries (fewer when one takes over BUDGET_S / n)."""
    rng = random.Random(3)
    ids = _external_ids(catalog)
    queries = sample_queries(rows, n)
    photos = [r.photo for r in rng.sample(rows, min(n, len(rows)))]
    searcher = Searcher(settings, catalog)
    out: dict[str, Any] = {}
    out["stats"] = _timed(lambda i: catalog_stats(catalog), n)
    pages = _page_queries(rows, rng, n)
    out["product_page"] = _timed(lambda i: list_products(catalog, pages[i][0], 50, pages[i][1]), n)
    out["keyword_search"] = _timed(lambda i: keyword_search(catalog, [queries[i]], limit=10), n)
    # what hybrid search asks the keyword index: without gender and price words (filters), at its pool's size
    sent = [keyword_words(searcher.understand(q)) for q in queries]
    out["keyword_as_sent"] = _timed(lambda i: keyword_search(catalog, sent[i], limit=FUSION.pool), n)
    out["hybrid_search"] = _timed(lambda i: _text_search(searcher, queries[i]), n)
    out["similar"] = _timed(lambda i: searcher.similar(rng.choice(ids), 10), n)
    out["photo_search"] = _timed(lambda i: searcher.search_photo(photos[i % len(photos)], 10), n)
    vectors = [searcher.embed_photo(p) for p in photos[:20]]
    out["photo_search_index_only"] = _timed(
        lambda i: searcher.search_vectors(vectors[i % 20][None, :], "photo", 10, None, "auto"), n
    )
    started = time.perf_counter()
    completer = Completer(catalog, searcher.index, settings)
    out["complete_load_s"] = time.perf_counter() - started
    wearable = [i for i in ids[:200] if _complete(completer, i)]  # socks and perfume are in no outfit: refused
    out["complete"] = _timed(lambda i: _complete(completer, rng.choice(wearable)), n)
    print("   " + ", ".join(f"{k} p99 {v['p99_ms']:.0f} ms" for k, v in out.items() if isinstance(v, dict)), flush=True)
    return out


def _text_search(searcher: Searcher, query: str) -> None:
    with contextlib.suppress(InputError):  # a query of only stop words: refused at once, as the API would
        searcher.search_text(query, 10)


def _complete(completer: Completer, ref: str) -> bool:
    """Complete the look of one product; False when it is in no outfit (the API answers 422)."""
    try:
        completer.complete(completer.piece_of_product(ref), 3)
    except InputError:
        return False
    return True


def _page_queries(rows: list[Any], rng: random.Random, n: int) -> list[tuple[ProductQuery, int]]:
    """Category + gender (+ sometimes a price cap and in-stock), a page among the first 20."""
    out = []
    for _ in range(n):
        r = rng.choice(rows)
        cap = rng.choice([None, 1000.0, 3000.0])
        query = ProductQuery(category=[r.article], gender=[r.gender], max_price=cap, in_stock=rng.random() < 0.5)
        out.append((query, 50 * rng.randrange(20)))
    return out


def _external_ids(catalog: CatalogStore, n: int = 2000) -> list[str]:
    with catalog.engine.connect() as conn:
        return list(
            conn.scalars(text("SELECT external_id FROM products WHERE gone_at IS NULL ORDER BY id LIMIT :n"), {"n": n})
        )


def _timed(call: Callable[[int], Any], n: int) -> dict[str, float]:
    call(0)  # the first call loads models and indexes: not what a warm server pays
    times: list[float] = []
    deadline = time.perf_counter() + BUDGET_S
    for i in range(n):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
        if time.perf_counter() > deadline and len(times) >= 20:
            break
    return {
        "n": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
    }


# -- the serving process and the disk ---------------------------------------------------------------


def _serve_rss(settings: Settings, pg_url: str | None, rows: list[Any]) -> dict[str, Any]:
    """VmRSS / VmHWM of `sveta serve` on this home after a few of each request (engines and caches loaded)."""
    port, log = _free_port(), settings.data_dir / "serve.log"
    env = os.environ | {"SVETA_DATA_DIR": str(settings.data_dir), "SVETA_SYNC_EVERY": "0"}
    env |= {"SVETA_DATABASE_URL": pg_url} if pg_url else {}
    command = [sys.executable, "-m", "sveta", "serve", "--port", str(port)]
    with log.open("wb") as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process, log)
        idle = _rss(process.pid)
        statuses = _warm(base, rows)
        rss = _rss(process.pid)
        return {"serve_rss_idle_mb": idle["VmRSS"], "serve_rss_mb": rss["VmRSS"], "serve_hwm_mb": rss["VmHWM"]} | {
            "serve_warm_statuses": statuses
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def _warm(base: str, rows: list[Any], rounds: int = 5) -> dict[str, int]:
    """A few of each request the web page makes; the count of each HTTP status (all 200 when the home is sound)."""
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        page = client.get("/api/products", params={"limit": 20}).json()["items"]
        ids = [card["source_id"] for card in page]
        for i in range(rounds):
            row = rows[i * 97 % len(rows)]
            for response in (
                client.get("/api/stats"),
                client.get("/api/products", params={"category": row.article, "gender": row.gender}),
                client.get("/api/search/text", params={"q": f"{row.colour} {row.article}".lower()}),
                client.get(f"/api/products/{ids[i]}/similar"),
                client.post("/api/search/photo", files={"file": row.photo.read_bytes()}),
                client.get(f"/api/complete/{ids[i]}"),
            ):
                key = str(response.status_code)
                if response.status_code != 200:  # named, so that a broken home is seen, not averaged away
                    key += f" {response.request.method} {response.request.url.path}"
                statuses[key] = statuses.get(key, 0) + 1
    return statuses


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sveta serve exited: {log.read_text(errors='replace')[-500:]}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("sveta serve did not answer /healthz")


def _rss(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _db_bytes(catalog: CatalogStore) -> int:
    """SQLite: the file and its WAL after a checkpoint; PostgreSQL: the database's size."""
    with catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if catalog.engine.dialect.name == "postgresql":
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(str(catalog.engine.url.database))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _disk(settings: Settings, db_bytes: int, n: int) -> dict[str, Any]:
    index = _folder_bytes(settings.index_dir)
    images = _folder_bytes(settings.image_cache_dir)  # local photos are not copied, so ~0 here; URLs would be
    return {
        "index_bytes": index,
        "image_cache_bytes": images,
        "disk_bytes_per_product": round((db_bytes + index + images) / n),
    }


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
