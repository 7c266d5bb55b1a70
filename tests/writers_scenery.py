"""What the concurrent writers work on: Myntra feeds, their photos over local HTTP, the real API under uvicorn, and
the child processes (`sveta ingest`, the tagging process) run with the scenario's settings."""

from __future__ import annotations

import csv
import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from sveta.api.app import create_app
from sveta.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"


def scenario_settings(home: Path, url: str) -> Settings:
    """The API's settings: open writes, no background loop (the scenario runs one sync pass), the cheap embedder."""
    return Settings(
        _env_file=None,
        data_dir=home / "data",
        database_url=url,
        api_open_writes=True,
        sync_every="0",
        embedder="colour",
        allowed_private_hosts=["127.0.0.1"],
        crawl_delay_s=0.0,
        weak_label_photos=0,
    )


def write_feeds(folder: Path, sizes: dict[str, int], photos: str) -> dict[str, Path]:
    """One Myntra styles.csv per source name, ``sizes[name]`` distinct products each, photos as URLs on ``photos``."""
    with (MYNTRA / "styles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) < sum(sizes.values()):
        raise ValueError(f"{sum(sizes.values())} products asked for, the Myntra feed has {len(rows)}")
    feeds, start = {}, 0
    for name, size in sizes.items():
        path = folder / name / "styles.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        chosen = [{**r, "image_url": f"{photos}/{r['id']}.jpg"} for r in rows[start : start + size]]
        start += size
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(chosen[0]))
            writer.writeheader()
            writer.writerows(chosen)
        feeds[name] = path
    return feeds


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def photo_server() -> Iterator[str]:
    """The Myntra photos over local HTTP, as a store's CDN: the sync pass fetches them."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(MYNTRA / "images")))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def api_server(settings: Settings) -> Iterator[tuple[str, Any]]:
    """The real app under uvicorn on a free port, in a thread; its URL and the app's own catalog (as the
    background sync of `sveta serve` uses it). Leaving waits for the crawls the API started."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    _wait(lambda: httpx.get(f"{base}/healthz").status_code == 200)
    try:
        yield base, app.state.sveta.catalog()
    finally:
        app.state.sveta.crawls.join(60)
        server.should_exit = True
        thread.join(10)
        app.state.sveta.close()


def child(code: str, args: list[str], settings: Settings | None, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``python -c code args...``; with ``settings``, in the data home's folder (no checkout .env is read) and with
    its data home and catalog in the environment, as a user's shell would have them."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env, where = {**os.environ, "PYTHONPATH": path}, ROOT
    if settings is not None:
        env |= {"SVETA_DATA_DIR": str(settings.data_dir), "SVETA_DATABASE_URL": settings.catalog_url}
        where = settings.data_dir.parent
    command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, env=env, cwd=where, capture_output=True, text=True, timeout=timeout_s)


def _wait(ready: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the API server did not answer in {timeout_s:.0f} s")
