"""Load on loopback: photo and product-similar searches at a steady rate through the API while a re-sync swaps the
index; p50 / p99 and errors, and the API's product-similar p50 against the library call in the same process.

Run on a copy of a built data home (the re-sync writes a new index version):
    cp -r sveta-data /tmp/load-home && SVETA_DATA_DIR=/tmp/load-home .venv/bin/python benchmarks/bench_api_load.py
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from sveta.api.app import create_app
from sveta.catalog.store import open_catalog
from sveta.engines.search import Searcher
from sveta.ops.sync import sync_once
from sveta.settings import Settings

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=8.0, help="requests per second (half photo, half similar)")
    parser.add_argument("--photos", type=Path, default=Path("../shared/datasets/myntra-small/images"))
    parser.add_argument("--drop", type=int, default=200, help="products the re-synced feed no longer lists")
    parser.add_argument("--out", type=Path, default=RESULTS / "api-load.json")
    args = parser.parse_args()
    settings = Settings(sync_every="0")
    catalog = open_catalog(settings.catalog_url)
    products = _products(catalog)
    _shrink_feed(catalog, settings, args.drop)
    photos = sorted(args.photos.glob("*.jpg"))[:500]
    library = _library_similar(settings, catalog, products)
    server, base = _serve(settings)
    try:
        idle = _api_similar(base, products)
        result = _load(base, products, photos, args, lambda: sync_once(catalog, settings, log=lambda _m: None))
    finally:
        server.should_exit = True
    result["library_similar_p50_ms"] = library
    result["api_similar_p50_ms_one_at_a_time"] = idle
    result["api_over_library_similar_p50"] = round(idle / library, 2)
    result["api_under_load_over_library_similar_p50"] = round(result["similar"]["p50_ms"] / library, 2)
    _print(result)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


def _shrink_feed(catalog: Any, settings: Settings, drop: int) -> None:
    """Point the CSV source at a copy without its last ``drop`` rows: the re-sync then marks them gone and removes
    their photos from the index, so a new index version is published (and swapped in) during the load."""
    from sqlalchemy import select

    from sveta.catalog.models import Source

    with catalog.session() as s:
        source = s.scalars(select(Source).where(Source.kind == "csv")).first()
        if source is None:
            raise SystemExit("no CSV source in this data home: build it with ./scripts/demo")
        original = Path(source.location)
        copy = settings.data_dir / "load-feed" / original.name
        copy.parent.mkdir(exist_ok=True)
        if not (copy.parent / "images").exists():
            (copy.parent / "images").symlink_to(original.parent / "images")
        lines = original.read_text(encoding="utf-8").splitlines(keepends=True)
        copy.write_text("".join(lines[: len(lines) - drop]), encoding="utf-8")
        source.location = str(copy)


def _products(catalog: Any) -> list[str]:
    from sqlalchemy import select

    from sveta.catalog.models import Product

    with catalog.session() as s:
        return [str(i) for i in s.scalars(select(Product.id).limit(2000))]


def _library_similar(settings: Settings, catalog: Any, products: list[str], n: int = 200) -> float:
    """p50 ms of Searcher.similar, the call the API's endpoint makes, in this process."""
    searcher = Searcher(settings, catalog)
    rng = random.Random(1)
    searcher.similar(products[0], 10, None, None)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        searcher.similar(rng.choice(products), 10, None, None)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def _api_similar(base: str, products: list[str], n: int = 200) -> float:
    """p50 ms of GET /api/products/{id}/similar one request at a time (the same queries as the library's)."""
    rng = random.Random(1)
    times = []
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get(f"/api/products/{products[0]}/similar")
        for _ in range(n):
            start = time.perf_counter()
            client.get(f"/api/products/{rng.choice(products)}/similar").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def _serve(settings: Settings) -> tuple[uvicorn.Server, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _load(base: str, products: list[str], photos: list[Path], args: Any, resync: Any) -> dict[str, Any]:
    """Requests at a steady rate from a small pool of workers; a re-sync runs once a third of the way in."""
    lat: dict[str, list[float]] = {"photo": [], "similar": []}
    errors: list[str] = []
    rng = random.Random(0)
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get(f"/api/products/{products[0]}/similar")  # load the engines before the clock starts
        client.post("/api/search/photo", files={"file": photos[0].read_bytes()})
        swaps: list[float] = []
        start = time.perf_counter()
        sync_at = start + args.seconds / 3
        threading.Thread(target=_resync_at, args=(sync_at, resync, swaps), daemon=True).start()
        threads = []
        n = int(args.seconds * args.rate)
        for i in range(n):
            due = start + i / args.rate
            time.sleep(max(0.0, due - time.perf_counter()))
            kind = "photo" if i % 2 else "similar"
            target = photos[rng.randrange(len(photos))] if kind == "photo" else rng.choice(products)
            t = threading.Thread(target=_one, args=(client, kind, target, lat, errors))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    return {
        "seconds": args.seconds,
        "rate_per_s": args.rate,
        "requests": n,
        "errors": len(errors),
        "error_samples": errors[:5],
        "resync_seconds": swaps,
        "photo": _summary(lat["photo"]),
        "similar": _summary(lat["similar"]),
    }


def _resync_at(when: float, resync: Any, swaps: list[float]) -> None:
    time.sleep(max(0.0, when - time.perf_counter()))
    start = time.perf_counter()
    resync()
    swaps.append(round(time.perf_counter() - start, 2))


def _one(client: httpx.Client, kind: str, target: Any, lat: dict[str, list[float]], errors: list[str]) -> None:
    start = time.perf_counter()
    try:
        if kind == "photo":
            response = client.post("/api/search/photo", files={"file": target.read_bytes()})
        else:
            response = client.get(f"/api/products/{target}/similar")
        if response.status_code != 200:
            errors.append(f"{kind} {response.status_code} {response.text[:120]}")
            return
    except httpx.HTTPError as exc:
        errors.append(f"{kind} {exc!r}")
        return
    lat[kind].append((time.perf_counter() - start) * 1000)


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
    }


def _print(r: dict[str, Any]) -> None:
    print(f"{r['requests']} requests in {r['seconds']:.0f} s at {r['rate_per_s']}/s; errors {r['errors']}")
    print(f"re-sync (index swapped) took {r['resync_seconds']} s during the load")
    for kind in ("photo", "similar"):
        s = r[kind]
        print(f"  {kind:8s} n={s['n']:4d}  p50 {s['p50_ms']:8.2f} ms  p99 {s['p99_ms']:8.2f} ms")
    print(
        f"  product-similar p50, one at a time: API {r['api_similar_p50_ms_one_at_a_time']} ms, library "
        f"{r['library_similar_p50_ms']} ms ({r['api_over_library_similar_p50']}x); under the load above "
        f"{r['api_under_load_over_library_similar_p50']}x"
    )


if __name__ == "__main__":
    main()
