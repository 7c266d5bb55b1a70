"""Overload on a real server: heavy requests through a bounded pool (503 + Retry-After at once when it is full, or
after the wait timeout), health checks that never wait behind them, and the per-client rate limit."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sveta.api import create_app
from sveta.api.overload import HeavyPool, TokenBuckets
from sveta.catalog.store import open_catalog
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.settings import Settings

N = 12  # products in the catalog: enough for a search to find something, quick to index with the colour embedder


@pytest.fixture(scope="module")
def home(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """N real Myntra products, indexed with the colour embedder (no model to load: the index takes a fraction of a
    second); photo URLs on 127.0.0.1 are allowed, for the held image host."""
    root = tmp_path_factory.mktemp("overload")
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()
    feed = root / "feed" / "styles.csv"
    feed.parent.mkdir()
    feed.write_text("\n".join(lines[: N + 1]) + "\n", encoding="utf-8")
    settings = Settings(data_dir=root / "data", embedder="colour", sync_every="0", allowed_private_hosts=["127.0.0.1"])
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    assert sync_index(catalog, settings).count == N
    catalog.engine.dispose()
    return settings


@pytest.fixture(scope="module")
def photo(myntra: Path) -> bytes:
    return sorted((myntra / "images").glob("*.jpg"))[0].read_bytes()


@contextmanager
def serve(settings: Settings) -> Iterator[httpx.Client]:
    """The app on a real uvicorn server on a free local port, trusting X-Forwarded-For from 127.0.0.1 only (uvicorn's
    default, named so the environment cannot change it); yields a client of it (thread-safe, one connection each)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", forwarded_allow_ips="127.0.0.1"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="overload-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class HeldImages:
    """A local image host whose answers wait until the test releases them: a URL search on it holds its worker of
    the heavy pool for as long as the test wants, with no timing guesses."""

    def __init__(self, photo: bytes) -> None:
        self.photo, self.released, self.arrived = photo, threading.Event(), 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with held._lock:
                    held.arrived += 1
                held.released.wait(30)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(held.photo)))
                self.end_headers()
                self.wfile.write(held.photo)

            def log_message(self, *_args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def held(photo: bytes) -> Iterator[HeldImages]:
    images = HeldImages(photo)
    yield images
    images.close()


def _until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def _gauge(client: httpx.Client, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", client.get("/metrics").text, re.M)
    return float(found.group(1)) if found else -1.0


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def _overloaded(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "overloaded" and "SVETA_API_HEAVY_WORKERS" in error["hint"], error
    assert re.fullmatch(r"[1-9]\d*", response.headers["Retry-After"]), response.headers
    return error


def _url_search(client: httpx.Client, url: str) -> Callable[[], httpx.Response]:
    return lambda: client.post("/api/search/url", json={"url": url, "k": 3})


def test_a_full_pool_answers_503_at_once_serves_its_queue_and_health_never_waits(
    home: Settings, held: HeldImages, photo: bytes
) -> None:
    settings = home.model_copy(update={"api_heavy_workers": 1, "api_heavy_queue": 2, "api_heavy_timeout_s": 30})
    with serve(settings) as api, ThreadPoolExecutor(3) as clients:
        assert all(api.get("/api/products").status_code == 200 for _ in range(30))  # no rate limit by default
        running = clients.submit(_url_search(api, held.base + "/1.jpg"))
        _until(lambda: held.arrived == 1, "the first search reached the image host")
        queued = [clients.submit(_url_search(api, f"{held.base}/{i}.jpg")) for i in (2, 3)]
        _until(lambda: _gauge(api, "sveta_heavy_waiting") == 2, "two searches waiting for the worker")

        upload = {"file": ("p.jpg", photo, "image/jpeg")}
        refused = {
            "search/photo": lambda: api.post("/api/search/photo", files=upload),
            "search/url": _url_search(api, held.base + "/4.jpg"),
            "look": lambda: api.post("/api/look", files=upload),
            "tag": lambda: api.post("/api/tag", files=upload),
            "complete": lambda: api.post("/api/complete", files=upload),
            "map": lambda: api.get("/api/map"),
        }
        for name, call in refused.items():
            response, seconds = _timed(call)
            assert "(1 running, 2 let in to wait)" in _overloaded(response)["message"], name
            assert seconds < 2.0, f"{name} took {seconds:.2f} s to be refused (the wait timeout is 30 s)"

        health = [_timed(lambda: api.get("/healthz")) for _ in range(20)]
        assert all(r.status_code == 200 for r, _ in health) and max(s for _, s in health) < 1.0, health
        assert api.get("/readyz").status_code == 200
        assert api.get("/api/products/1/similar").status_code == 200  # light: never in the pool
        assert held.arrived == 1, "a refused or queued search reached the image host"

        held.released.set()
        for future in (running, *queued):
            assert future.result(timeout=30).status_code == 200, future.result().text
        metrics = api.get("/metrics").text
    assert 'sveta_http_rejected_total{reason="queue_full"} 6' in metrics
    assert 'route="/api/search/photo",status="503"} 1' in metrics
    assert "sveta_heavy_busy 0" in metrics and "sveta_heavy_waiting 0" in metrics


def test_waiting_past_the_timeout_is_a_503_and_the_worker_is_not_lost(home: Settings, held: HeldImages) -> None:
    settings = home.model_copy(update={"api_heavy_workers": 1, "api_heavy_queue": 1, "api_heavy_timeout_s": 0.5})
    with serve(settings) as api, ThreadPoolExecutor(1) as clients:
        running: Future[httpx.Response] = clients.submit(_url_search(api, held.base + "/1.jpg"))
        _until(lambda: held.arrived == 1, "the first search reached the image host")
        response, seconds = _timed(_url_search(api, held.base + "/2.jpg"))
        error = _overloaded(response)
        assert "no worker was free within 0.5 s" in error["message"]
        assert 0.5 <= seconds < 2.5 and response.headers["Retry-After"] == "1"  # never past the wait timeout
        held.released.set()
        assert running.result(timeout=30).status_code == 200
        again = _url_search(api, held.base + "/3.jpg")()
        assert again.status_code == 200, again.text  # the timed-out waiter gave nothing away
        assert 'sveta_http_rejected_total{reason="queue_timeout"} 1' in api.get("/metrics").text


def test_a_slow_upload_is_let_in_but_holds_no_worker(home: Settings, photo: bytes) -> None:
    settings = home.model_copy(update={"api_heavy_workers": 1, "api_heavy_queue": 1})
    with serve(settings) as api, socket.create_connection(("127.0.0.1", api.base_url.port or 0)) as slow:
        content_type, body = _multipart(photo)
        head = f"POST /api/search/photo HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        slow.sendall(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:100])
        _until(lambda: _gauge(api, "sveta_heavy_admitted") == 1, "the slow upload was let in")
        assert _gauge(api, "sveta_heavy_busy") == 0  # it holds a place, not the one worker
        quick = api.post("/api/search/photo", files={"file": ("q.jpg", photo, "image/jpeg")})
        assert quick.status_code == 200, quick.text
        slow.sendall(body[100:])
        answer = slow.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def _multipart(photo: bytes) -> tuple[str, bytes]:
    boundary = "overload-test"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
    head += "Content-Type: image/jpeg\r\n\r\n"
    return f"multipart/form-data; boundary={boundary}", head.encode() + photo + f"\r\n--{boundary}--\r\n".encode()


def test_the_rate_limit_gives_429_per_client_and_never_limits_health(home: Settings) -> None:
    with serve(home.model_copy(update={"api_rate_limit": 5})) as api:
        assert [api.get("/api/products").status_code for _ in range(5)] == [200] * 5
        limited = api.get("/api/stats")
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited", limited.text
        assert 1 <= int(limited.headers["Retry-After"]) <= 12  # 5 a minute: a request's worth every 12 s
        assert "SVETA_API_RATE_LIMIT" in limited.json()["error"]["hint"]
        for path in ("/healthz", "/readyz", "/metrics", "/"):
            assert all(api.get(path).status_code == 200 for _ in range(8)), path

        proxied = {"X-Forwarded-For": "203.0.113.9"}  # from the trusted proxy: that client has its own budget
        assert api.get("/api/products", headers=proxied).status_code == 200
        from_other = httpx.HTTPTransport(local_address="127.0.0.2")  # loopback too, but not the trusted proxy
        with httpx.Client(base_url=api.base_url, transport=from_other) as other:
            assert [other.get("/api/products").status_code for _ in range(5)] == [200] * 5
            spoofed = other.get("/api/products", headers={"X-Forwarded-For": "198.51.100.1"})
            assert spoofed.status_code == 429  # an untrusted peer cannot pick another address
        status, body = _upload_and_close(api.base_url.port or 0, 2_000_000)
        assert status == 429 and body["error"]["code"] == "rate_limited"  # the answer, not a reset
        assert 'sveta_http_rejected_total{reason="rate_limited"} 3' in api.get("/metrics").text


def _upload_and_close(port: int, size: int) -> tuple[int, dict[str, Any]]:
    """A photo search sent whole, as one-shot clients do, with ``Connection: close``."""
    content_type, body = _multipart(bytes(size))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": content_type, "Connection": "close"}
        conn.request("POST", "/api/search/photo", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_token_buckets_refill_and_forget_idle_addresses() -> None:
    now = [0.0]
    buckets = TokenBuckets(6, clock=lambda: now[0])  # a burst of 6, then one every 10 s
    assert [buckets.take("a") for _ in range(6)] == [0.0] * 6
    assert buckets.take("a") == pytest.approx(10.0) and buckets.take("b") == 0.0
    now[0] = 5.0
    assert buckets.take("a") == pytest.approx(5.0)
    now[0] = 10.0
    assert buckets.take("a") == 0.0 and len(buckets) == 2
    now[0] = 69.0
    assert buckets.take("c") == 0.0 and len(buckets) == 2  # b was last seen 69 s ago: forgotten
    now[0] = 75.0
    assert buckets.take("c") == 0.0 and len(buckets) == 1  # and a 65 s ago


def test_a_waiter_that_goes_away_leaves_no_worker_taken() -> None:
    async def scenario() -> tuple[float, float, bool]:
        pool = HeavyPool(workers=1, queue=1, timeout_s=30)
        holder = await pool.slot()
        waiting = asyncio.create_task(pool.slot())
        await asyncio.sleep(0.05)
        queued = pool.gauges()["sveta_heavy_waiting"][1]
        waiting.cancel()  # the client went away while it waited
        await asyncio.gather(waiting, return_exceptions=True)
        holder.close()
        after = await pool.slot()  # free at once: neither the holder's nor the leaver's worker was lost
        busy = pool.gauges()["sveta_heavy_busy"][1]
        ran = await after.run(lambda: threading.current_thread().name.startswith("sveta-heavy"))
        pool.close()
        return queued, busy, ran

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == (1.0, 1.0, True)


def test_an_app_started_again_after_a_stop_still_serves_heavy_requests(home: Settings, photo: bytes) -> None:
    """The lifespan's shutdown closes the heavy pool's threads; its next startup makes new ones (tests, and ASGI
    servers that restart an app, run the lifespan more than once)."""
    from fastapi.testclient import TestClient

    app = create_app(home)
    upload = {"file": ("q.jpg", photo, "image/jpeg")}
    for _ in range(2):
        with TestClient(app) as client:
            response = client.post("/api/search/photo", files=upload, params={"k": 3})
            assert response.status_code == 200, response.text
            assert len(response.json()["matches"]) == 3
            assert client.get("/metrics").status_code == 200
