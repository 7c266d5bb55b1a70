"""Overload: a burst of concurrent photo searches (real uploads) against a heavy pool of 4 on a real `sveta serve`,
with /healthz polled all the while: every answer is a 200 or a 503 with Retry-After, none slower than the wait.

    python benchmarks/bench_overload.py                           # 300 products, 200 searches at once, pool of 4
    python benchmarks/bench_overload.py --burst 400 --workers 2 --queue 4

The catalog: the first N rows of ../shared's myntra-small, ingested and indexed with the default embedder
(effnet-lite0 + colour) into a data home under /tmp/sveta-bench-overload (made once, about a minute on 2 cores).
The server is `sveta serve` in a process of its own, with SVETA_API_HEAVY_WORKERS / _QUEUE / _TIMEOUT_S set; the
burst uploads photos of products that are not in the catalog, all at once from one asyncio client, while another
process asks /healthz every 10 ms (so neither client's work is counted in the other's latencies). Each burst comes
after a control burst of the same uploads to a path no route knows (404, no work): what receiving 200 uploads at
once costs on this machine by itself. Three of each (--repeat), pooled. Writes benchmarks/results/overload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from _homes import indexed_home  # benchmarks/ is on the path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets" / "myntra-small"
HOME = Path("/tmp/sveta-bench-overload")
OUT = ROOT / "benchmarks" / "results" / "overload.json"
SVETA = Path(sys.executable).parent / "sveta"
CONTROL = "/api/no-such-route"  # the control burst: the same uploads, answered 404 without any work


def build_home(n: int) -> dict[str, Any]:
    """The first n rows of myntra-small ingested and indexed under HOME, unless an index of n vectors is there."""
    from sveta.settings import Settings

    return indexed_home(Settings(data_dir=HOME / "data", sync_every="0"), HOME, SHARED, n)


def query_photos(n_catalog: int, count: int) -> list[Path]:
    """Photos of products after the catalog's rows: never an exact match of an indexed photo."""
    lines = (SHARED / "styles.csv").read_text(encoding="utf-8").splitlines()[n_catalog + 1 :]
    ids = (line.split(",", 1)[0] for line in lines)
    photos = [SHARED / "images" / f"{i}.jpg" for i in ids]
    return [p for p in photos if p.is_file()][:count]


# -- the server ----------------------------------------------------------------------------------------


def start_server(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = os.environ | {
        "SVETA_DATA_DIR": str(HOME / "data"),
        "SVETA_SYNC_EVERY": "0",
        "SVETA_API_HEAVY_WORKERS": str(args.workers),
        "SVETA_API_HEAVY_QUEUE": str(args.queue),
        "SVETA_API_HEAVY_TIMEOUT_S": str(args.timeout),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SVETA), "serve", "--port", str(port)], env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"the server did not start; see {log}")


def one_at_a_time(base: str, photos: list[Path], products: list[str], n: int = 15) -> dict[str, float]:
    """p50 ms of each kind of search alone: what is heavy and what is light."""
    calls = {
        "search_photo": lambda c, i: c.post("/api/search/photo", files={"file": photos[i].read_bytes()}),
        "search_text": lambda c, i: c.get("/api/search/text", params={"q": "navy blue shirt for men"}),
        "similar": lambda c, i: c.get(f"/api/products/{products[i % len(products)]}/similar"),
    }
    result = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, call in calls.items():
            call(client, 0).raise_for_status()  # warm: the embedders and the index are loaded
            times = []
            for i in range(n):
                started = time.perf_counter()
                call(client, i).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            result[f"{name}_p50_ms"] = round(statistics.median(times), 1)
    return result


# -- the burst and the health poller ---------------------------------------------------------------


def poll_health(base: str, pipe: Connection) -> None:
    """In its own process: GET /healthz every 10 ms until told to stop; sends back (ms, status) of each."""
    seen: list[tuple[float, int]] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        pipe.send("ready")
        while not pipe.poll():
            started = time.perf_counter()
            status = client.get("/healthz").status_code
            seen.append(((time.perf_counter() - started) * 1000, status))
            time.sleep(0.01)
    pipe.send(seen)


async def burst(base: str, photos: list[Path], path: str) -> list[dict[str, Any]]:
    """Every upload sent at once, each on its own connection; the answers' status, Retry-After and seconds."""
    bodies = [p.read_bytes() for p in photos]
    limits = httpx.Limits(max_connections=len(bodies) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(i: int) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                response = await client.post(path, files={"file": (f"q{i}.jpg", bodies[i])})
            except httpx.HTTPError as exc:
                return {"status": None, "error": repr(exc), "seconds": time.perf_counter() - started}
            code = response.json().get("error", {}).get("code") if response.status_code != 200 else None
            seconds = time.perf_counter() - started
            retry_after = response.headers.get("Retry-After")
            return {"status": response.status_code, "retry_after": retry_after, "code": code, "seconds": seconds}

        return await asyncio.gather(*(one(i) for i in range(len(bodies))))


def measure(
    base: str, photos: list[Path], path: str = "/api/search/photo"
) -> tuple[list[dict[str, Any]], list[tuple[float, int]], float]:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    poller = multiprocessing.get_context("spawn").Process(target=poll_health, args=(base, theirs), daemon=True)
    poller.start()
    assert ours.recv() == "ready"
    time.sleep(0.3)  # a few idle polls first
    started = time.perf_counter()
    answers = asyncio.run(burst(base, photos, path))
    wall = time.perf_counter() - started
    ours.send("stop")
    health: list[tuple[float, int]] = ours.recv()
    poller.join(timeout=10)
    return answers, health, wall


Pooled = tuple[list[dict[str, Any]], list[tuple[float, int]], list[float]]  # answers, health polls, walls


def bursts(base: str, photos: list[Path], repeat: int) -> tuple[Pooled, Pooled]:
    """``repeat`` control bursts and photo-search bursts, alternating (the machine is shared), each kind pooled."""
    control: Pooled = ([], [], [])
    search: Pooled = ([], [], [])
    for _ in range(repeat):
        for pooled, path in ((control, CONTROL), (search, "/api/search/photo")):
            answers, health, wall = measure(base, photos, path)
            pooled[0].extend(answers)
            pooled[1].extend(health)
            pooled[2].append(round(wall, 2))
    return control, search


# -- the report ----------------------------------------------------------------------------------------


def summary(
    answers: list[dict[str, Any]], health: list[tuple[float, int]], walls: list[float], timeout: float
) -> dict[str, Any]:
    ok = [a for a in answers if a["status"] == 200]
    busy = [a for a in answers if a["status"] == 503 and a["code"] == "overloaded" and _whole(a["retry_after"])]
    other = [a for a in answers if a not in ok and a not in busy]
    slowest = max(a["seconds"] for a in answers)
    ms = [h[0] for h in health]
    return {
        "burst_wall_s": walls,
        "answers": {"200": len(ok), "503_with_retry_after": len(busy), "other": len(other)},
        "other_samples": other[:5],
        "retry_after_values": sorted({int(a["retry_after"]) for a in busy}),
        "slowest_answer_s": round(slowest, 2),
        "wait_timeout_s": timeout,
        "slowest_under_timeout": slowest < timeout,
        "ok_seconds": _percentiles([a["seconds"] for a in ok], 1000),
        "busy_seconds": _percentiles([a["seconds"] for a in busy], 1000),
        "healthz": {"n": len(ms), "not_200": sum(1 for h in health if h[1] != 200), **_percentiles(ms, 1)},
    }


def _control(answers: list[dict[str, Any]], health: list[tuple[float, int]], _walls: list[float]) -> dict[str, Any]:
    """The same uploads to a path no route knows: what receiving the burst alone costs the clients and /healthz."""
    return {
        "path": CONTROL,
        "answers_404": sum(1 for a in answers if a["status"] == 404),
        "seconds": _percentiles([a["seconds"] for a in answers], 1000),
        "healthz": _percentiles([h[0] for h in health], 1),
    }


def _whole(header: str | None) -> bool:
    return header is not None and header.isdigit() and int(header) >= 1


def _percentiles(values: list[float], scale: float) -> dict[str, float]:
    """p50, p99 (nearest rank) and the largest, times ``scale`` (1000: seconds as ms)."""
    if not values:
        return {}
    ordered = sorted(v * scale for v in values)
    p50, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99))
    return {"p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "max_ms": round(ordered[-1], 1)}


def rejected(base: str) -> dict[str, int]:
    text = httpx.get(f"{base}/metrics").text
    return {m[1]: int(m[2]) for m in re.finditer(r'sveta_http_rejected_total\{reason="(\w+)"\} (\d+)', text)}


def _machine(load: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=300, help="products in the catalog")
    parser.add_argument("--burst", type=int, default=200, help="photo searches sent at once")
    parser.add_argument("--workers", type=int, default=4, help="SVETA_API_HEAVY_WORKERS")
    parser.add_argument("--queue", type=int, default=8, help="SVETA_API_HEAVY_QUEUE")
    parser.add_argument("--timeout", type=float, default=30.0, help="SVETA_API_HEAVY_TIMEOUT_S")
    parser.add_argument("--repeat", type=int, default=3, help="bursts (each after its control burst), pooled")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    load = os.getloadavg()
    home = build_home(args.products)
    photos = query_photos(args.products, args.burst)
    HOME.mkdir(parents=True, exist_ok=True)
    proc, base = start_server(args, HOME / "server.log")
    try:
        alone = one_at_a_time(base, photos, [str(i) for i in range(1, 40)])
        _answers, idle, _wall = measure(base, [])
        control, searches = bursts(base, photos, args.repeat)
        reasons = rejected(base)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": _machine(load),
        "catalog": {"products": args.products, **home},
        "server": {"heavy_workers": args.workers, "heavy_queue": args.queue, "heavy_timeout_s": args.timeout},
        "one_at_a_time": alone,
        "healthz_idle": _percentiles([h[0] for h in idle], 1),
        "control_burst_of_404s": _control(*control),
        "burst": {
            "photo_searches": len(searches[0]),
            "bursts": args.repeat,
            **summary(*searches, args.timeout),
        },
        "rejected_by_reason": reasons,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
