"""A real local HTTP server that behaves like a Shopify storefront, built from the shared real fixture."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sveta.settings import Settings

FIXTURE = Path("fixtures") / "shopify" / "love-the-label-products.json"  # inside the shared folder
CAP_ERROR = {"errors": "Page * Limit exceeds the 25000 limit."}
_ID_STEP = 1_000_000_000  # far larger than the gaps between the fixture's ids, so derived ids never collide


def fixture_file() -> Path | None:
    """The real products.json in the shared folder (SVETA_SHARED_DIR, default ../shared), if present."""
    shared = Settings(_env_file=None).shared_dir
    path = shared / FIXTURE if shared else None
    return path if path and path.is_file() else None


def fixture_products() -> list[dict[str, Any]]:
    """The 5 real products of the shared fixture."""
    path = fixture_file()
    if path is None:
        raise FileNotFoundError(f"shared fixture {FIXTURE} not found; set SVETA_SHARED_DIR")
    return json.loads(path.read_text())["products"]


def make_products(n: int) -> list[dict[str, Any]]:
    """``n`` products: the 5 real ones, then copies with shifted ids, handles and titles."""
    real = fixture_products()
    out = []
    for i in range(n):
        product, copy_no = copy.deepcopy(real[i % len(real)]), i // len(real)
        if copy_no:
            _shift_ids(product, copy_no * _ID_STEP)
            product["handle"] += f"-{copy_no}"
            product["title"] += f" {copy_no}"
        out.append(product)
    return out


def _shift_ids(product: dict[str, Any], offset: int) -> None:
    product["id"] += offset
    featured = [v["featured_image"] for v in product["variants"] if v.get("featured_image")]
    images = [*product["images"], *featured]
    for variant in product["variants"]:
        variant["id"] += offset
        variant["product_id"] = product["id"]
    for image in images:
        image["product_id"] = product["id"]
        image["variant_ids"] = [v + offset for v in image["variant_ids"]]


@dataclass
class Canned:
    """A scripted answer: for ``path`` (and ``page`` when given), ``times`` times (None: always)."""

    path: str
    status: int = 200
    body: str | bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    page: int | None = None
    times: int | None = 1


@dataclass
class Hit:
    path: str
    query: dict[str, str]
    at: float  # time.monotonic() when the request arrived
    headers: dict[str, str]


class ShopifyStore:
    """What the server serves; tests change it between crawls (remove a product, touch updated_at, ...)."""

    def __init__(self, products: list[dict[str, Any]]) -> None:
        self.products = products
        self.robots: str | None = None  # None: /robots.txt is a 404
        self.cap_items: int | None = None  # 400 "Page * Limit exceeds" once page * limit > cap_items
        self.collections: dict[str, list[int]] = {}  # handle -> product ids
        self.canned: list[Canned] = []
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    def enqueue(
        self,
        path: str,
        status: int = 200,
        *,
        body: str | bytes | dict[str, Any] = b"",
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
        page: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer ``path`` this way (before the normal answer) ``times`` times; None: from now on."""
        data = json.dumps(body) if isinstance(body, dict) else body
        self.canned.append(Canned(path, status, data, content_type, headers or {}, page, times))

    def product(self, product_id: int) -> dict[str, Any]:
        return next(p for p in self.products if p["id"] == product_id)

    def paths(self) -> list[str]:
        return [h.path for h in self.hits]

    # -- called by the handler --------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, str | bytes, str, dict[str, str]]:
        page = int(query.get("page", "1"))
        with self._lock:
            canned = self._take_canned(path, page)
        if canned is not None:
            return canned.status, canned.body, canned.content_type, canned.headers
        if path == "/robots.txt":
            return (200, self.robots, "text/plain", {}) if self.robots is not None else _not_found()
        limit = min(int(query.get("limit", "30")), 250)
        if path == "/products.json":
            return self._listing("products", self.products, page, limit)
        if path == "/collections.json":
            items = [{"id": i + 1, "handle": h, "title": h.title()} for i, h in enumerate(self.collections)]
            return self._listing("collections", items, page, limit, capped=False)
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "collections" and parts[3] == "products.json":
            ids = self.collections.get(unquote(parts[2]))
            if ids is None:
                return _not_found()
            return self._listing("products", [p for p in self.products if p["id"] in ids], page, limit)
        return _not_found()

    def _take_canned(self, path: str, page: int) -> Canned | None:
        for canned in self.canned:
            if canned.path == path and canned.page in (None, page) and canned.times != 0:
                if canned.times is not None:
                    canned.times -= 1
                return canned
        return None

    def _listing(
        self, key: str, items: list[dict[str, Any]], page: int, limit: int, capped: bool = True
    ) -> tuple[int, str, str, dict[str, str]]:
        if capped and self.cap_items is not None and page * limit > self.cap_items:
            return 400, json.dumps(CAP_ERROR), "application/json; charset=utf-8", {}
        chunk = items[(page - 1) * limit : page * limit]
        return 200, json.dumps({key: chunk}), "application/json; charset=utf-8", {}


def _not_found() -> tuple[int, str, str, dict[str, str]]:
    return 404, "<html><body>Not found</body></html>", "text/html; charset=utf-8", {}


class _Handler(BaseHTTPRequestHandler):
    store: ShopifyStore  # set on the per-server subclass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.store.hits.append(Hit(parts.path, query, time.monotonic(), dict(self.headers.items())))
        status, body, content_type, headers = self.store.answer(parts.path, query)
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@contextmanager
def serve(store: ShopifyStore) -> Iterator[str]:
    """Serve ``store`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    with serve_handler(type("Handler", (_Handler,), {"store": store})) as url:
        yield url


@contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server for ``handler`` on 127.0.0.1 (a free port); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        thread.join(5)
