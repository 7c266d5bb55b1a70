"""Faults found against the running API: malformed URL hosts, ids out of range, a 413 the client must receive."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.catalog.models import MAX_ID
from sveta.cli import app
from sveta.errors import BlockedURLError, SvetaError
from sveta.images.cache import ImageCache
from sveta.net import check_url
from sveta.settings import Settings
from tests.conftest import reset_postgres

KEY = "test-key-0123456789"
WRITE = {"X-API-Key": KEY}
HUGE = "99999999999999999999999999"  # far past SQLite's 64-bit INTEGER: it overflowed into a 500
BIG = 2**40  # past PostgreSQL's 32-bit INTEGER id columns: it was an error there
AT_MOST = f"less than or equal to {MAX_ID}"


@pytest.fixture(params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The API over an empty catalog on SQLite and on a real PostgreSQL server."""
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url")
        reset_postgres(database_url)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, api_key=KEY)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"] and error["hint"], error
    assert "Traceback" not in response.text
    return error


# -- 1. malformed and overlong URL hosts ----------------------------------------------------------

BAD_URLS = {
    "http://" + "a" * 5_000 + "/p.jpg": "5,000 characters long, at most 253",
    "http://" + "a" * 64 + ".example/p.jpg": "a label 64 characters long, at most 63",
    "http://" + ".".join(["a" * 60] * 5) + "/p.jpg": "304 characters long, at most 253",
    "http://shop..example/p.jpg": "an empty label",
    "http://.example/p.jpg": "an empty label",
    "http://sh op.example/p.jpg": "characters other than letters, digits",
    "http://" + "ü" * 70 + ".example/p.jpg": "not a valid internationalised (IDNA) name",
    "http://[::1/p.jpg": "malformed URL",
    "http://shop.example:99999/p.jpg": "Port out of range",
    "http://shop.example:port/p.jpg": "malformed URL",
}


@pytest.fixture
def no_resolving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed host must be refused before any name is looked up (nothing is fetched or resolved)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"resolved {str(args[0])[:40]!r} before checking it")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("url", list(BAD_URLS))
def test_a_malformed_host_is_refused_before_any_fetch(client: TestClient, url: str, no_resolving: None) -> None:
    error = _error(client.post("/api/search/url", json={"url": url}), 400, "blocked_url")
    assert BAD_URLS[url] in error["message"] and "check the URL" in error["hint"]
    assert len(error["message"]) < 300  # the 5,000 characters are not echoed back


@pytest.mark.parametrize(
    ("location", "status", "code"),
    [
        ("http://[::1", 422, "input_error"),
        ("shop.example:99999", 422, "input_error"),
        ("a" * 5_000, 400, "blocked_url"),
    ],
)
def test_a_store_with_a_malformed_address_is_refused(
    client: TestClient, location: str, status: int, code: str, no_resolving: None
) -> None:
    error = _error(client.post("/api/sources", json={"location": location}, headers=WRITE), status, code)
    assert len(error["message"]) < 300


@pytest.mark.parametrize("url", list(BAD_URLS))
def test_the_guard_and_the_image_cache_refuse_a_malformed_host(url: str, tmp_path: Path, no_resolving: None) -> None:
    with pytest.raises(BlockedURLError, match=r"bad host name|malformed URL"):
        check_url(url)
    with ImageCache(Settings(data_dir=tmp_path)) as cache, pytest.raises(SvetaError):
        cache.fetch(url)  # what feeds and `sveta search URL` go through: an error with a remedy, not a crash


def test_well_formed_hosts_pass_the_form_check(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[str] = []

    def public(host: str, port: int, **kwargs: object) -> list[tuple[Any, ...]]:
        resolved.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", public)
    hosts = ["a" * 63 + ".example", ".".join(["a" * 63] * 3) + ".example.", "xn--r8jz45g.jp", "例え.jp", "s_3.cdn"]
    for host in hosts:
        check_url(f"http://{host}/p.jpg")
    assert resolved == [h.lower() for h in hosts]
    check_url("http://[2606:4700:4700::1111]/p.jpg")


# -- 2. ids out of range --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/products/{HUGE}",
        f"/api/products/{BIG}",
        f"/api/products/{HUGE}/image",
        f"/api/products/{HUGE}/similar",
        f"/api/complete/{HUGE}",
        "/api/products/-185102607515142979584",
        "/api/products/%C2%B2",  # '²' is a digit to str.isdigit, but int() refuses it
        f"/api/products/{MAX_ID}",
        f"/api/images/{MAX_ID}",
        "/api/images/0",
        f"/api/crawl-runs/{MAX_ID}",
    ],
)
def test_a_product_or_id_that_names_nothing_is_a_404(client: TestClient, path: str) -> None:
    _error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "bound"),
    [
        ("GET", f"/api/images/{HUGE}", AT_MOST),
        ("GET", "/api/images/-185102607515142979584", "greater than or equal to 0"),
        ("GET", f"/api/images/{MAX_ID + 1}", AT_MOST),
        ("GET", f"/api/images/{BIG}", AT_MOST),
        ("GET", "/api/images/-1", "greater than or equal to 0"),
        ("GET", f"/api/crawl-runs/{HUGE}", AT_MOST),
        ("GET", f"/api/crawl-runs/{BIG}", AT_MOST),
        ("GET", "/api/crawl-runs/-5", "greater than or equal to 0"),
        ("POST", f"/api/sources/{HUGE}/crawl", AT_MOST),
        ("POST", f"/api/sources/{BIG}/crawl", AT_MOST),
        ("POST", "/api/sources/-1/crawl", "greater than or equal to 0"),
        ("GET", f"/api/products?offset={HUGE}", AT_MOST),
        ("GET", f"/api/audit?offset={HUGE}", AT_MOST),
    ],
)
def test_an_id_or_offset_out_of_range_is_a_422_that_says_the_range(
    client: TestClient, method: str, path: str, bound: str
) -> None:
    error = _error(client.request(method, path, headers=WRITE), 422, "validation_error")
    assert bound in error["message"]


def test_the_largest_offset_is_an_empty_page(client: TestClient) -> None:
    page = client.get(f"/api/products?offset={MAX_ID}")
    assert page.status_code == 200 and page.json()["items"] == []


@pytest.mark.parametrize("ref", ["99999999999999999999999", str(BIG), "-99999999999999999999999", "²"])
def test_the_cli_says_no_such_product_in_one_line(cli: CliRunner, ref: str) -> None:
    result = cli.invoke(app, ["similar", "--", ref])
    assert result.exit_code == 3, (result.output, result.exception)
    assert "error: no product" in result.output and "Traceback" not in result.output


def test_a_cli_limit_past_the_id_range_is_a_usage_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["images", "fetch", "--limit", "99999999999999999999999"])
    assert result.exit_code == 2 and "Invalid value" in result.output and "--limit" in result.output, result.output


# -- 3. the 413 of an oversized upload reaches the client -----------------------------------------

LIMIT = 25_000_000
BOUNDARY = "sveta-test-boundary"
HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
    "Content-Type: image/jpeg\r\n\r\n"
).encode()
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
PHOTO = 26_000_000  # bytes of the "photo": over the 25 MB limit


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The app on a real uvicorn server on a free local port, with a 25 MB upload limit; yields the port."""
    import uvicorn

    settings = Settings(data_dir=tmp_path_factory.mktemp("faults"), max_upload_bytes=LIMIT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="faults-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _body(size: int) -> Iterator[bytes]:
    """A multipart upload of a ``size`` bytes photo, made in 1 MB pieces (neither side holds it whole)."""
    yield HEAD
    for _ in range(size // 1_000_000):
        yield bytes(1_000_000)
    yield TAIL


def _post(
    port: int, size: int = PHOTO, *, chunked: bool = False, expect: bool = False, close: bool = True
) -> tuple[int, str | None, dict[str, Any]]:
    """POST the upload with http.client, which sends the whole body before it reads the answer; ``close`` sends
    ``Connection: close`` as urllib and other one-shot clients do: uvicorn then closes the connection as soon as the
    answer is sent, and a body left unread turns into a reset that the client sees instead of the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("POST", "/api/search/photo")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        if close:
            conn.putheader("Connection", "close")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(HEAD) + size + len(TAIL)))
        if expect:
            conn.putheader("Expect", "100-continue")
        conn.endheaders()
        if not expect:  # a client that asks first waits for 100 Continue, which never comes
            for piece in _body(size):
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, response.getheader("Connection"), json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("size", "chunked", "close"),
    # chunked, the limit is seen only once 25 MB are in: 40 MB leave enough unread for a reset
    [(PHOTO, False, True), (40_000_000, True, True), (PHOTO, False, False)],
    ids=["content-length", "chunked", "keep-alive"],
)
def test_an_oversized_upload_gets_its_413_not_a_reset(served: int, size: int, chunked: bool, close: bool) -> None:
    status, connection, body = _post(served, size, chunked=chunked, close=close)
    assert status == 413, body
    error = body["error"]
    assert error["code"] == "payload_too_large"
    assert error["message"] == f"photo too large: {size // 1_000_000} MB, limit 25 MB"
    assert "resize it" in error["hint"] and connection == "close"
    conn = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200  # the server is fine afterwards
    conn.close()


def test_a_client_that_waits_for_100_continue_is_answered_at_once(served: int) -> None:
    started = time.monotonic()
    status, connection, body = _post(served, expect=True)
    assert status == 413 and body["error"]["message"] == "photo too large: 26 MB, limit 25 MB"
    assert time.monotonic() - started < 10 and connection == "close"
