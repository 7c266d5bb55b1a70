"""A real local HTTP server that behaves like a Shopify store's Admin GraphQL API: token, cost bucket, failures."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.shopify_server import ShopifyStore, serve_handler

ENDPOINT = re.compile(r"^/admin/api/\d{4}-\d{2}/graphql\.json$")
BAD_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
TYPES = {"single_line_text_field", "multi_line_text_field", "number_integer", "boolean", "json"}
INPUT_KEYS = {"ownerId", "namespace", "key", "type", "value", "compareDigest"}
KEY = re.compile(r"^[a-zA-Z0-9_-]{2,64}$")
OWNER = re.compile(r"^gid://shopify/Product/\d+$")
BY_HANDLE = re.compile(r"(\w+)\s*:\s*productByIdentifier\(identifier:\s*\{\s*handle:\s*\$(\w+)\s*\}\)")
CONNECTION = re.compile(r'metafields\(namespace:\s*"([\w-]+)",\s*first:\s*(\d+)\)')
SET_MUTATION = re.compile(
    r"^mutation \w*\(\$metafields: \[MetafieldsSetInput!\]!\) \{ metafieldsSet\(metafields: \$metafields\) \{"
)
SET_COST = 10
MAX_INPUTS = 25


@dataclass
class AdminStore:
    """One store's products (gid -> handle), their metafields, the writes made, the bucket and scripted trouble.

    ``fail`` maps a request number (1-based, counted over authorised POSTs) to an HTTP status to answer instead
    (429 with ``Retry-After``, 502, ...); ``drain_on_set`` empties the bucket before those metafieldsSet calls (as
    another client of the same app would), so they are answered THROTTLED; ``delete_on_set`` deletes a product
    before one; ``hold_after_set`` makes that call apply its writes, then wait for ``release`` before answering.
    """

    products: dict[str, str]
    token: str
    maximum: float = 100.0
    restore_rate: float = 400.0  # Shopify's standard plan restores 100 a second: sped up for tests
    storefront: ShopifyStore | None = None
    metafields: dict[str, dict[str, str]] = field(default_factory=dict)
    writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    fail: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    drain_on_set: set[int] = field(default_factory=set)
    delete_on_set: dict[int, str] = field(default_factory=dict)
    hold_after_set: int | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    tokens_seen: list[str] = field(default_factory=list)
    requests: int = 0
    sets: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._available = self.maximum
        self._at = time.monotonic()

    def reset(self, products: dict[str, str]) -> None:
        """A fresh store with ``products`` and no metafields, writes, scripts or spent bucket (between tests)."""
        with self._lock:
            self.products = dict(products)
            self.metafields, self.writes, self.answers = {}, Counter(), Counter()
            self.fail, self.drain_on_set, self.delete_on_set, self.hold_after_set = {}, set(), {}, None
            self.holding, self.release = threading.Event(), threading.Event()
            self.tokens_seen, self.requests, self.sets = [], 0, 0
            self._available, self._at = self.maximum, time.monotonic()

    def delete(self, gid: str) -> None:
        with self._lock:
            self.products.pop(gid, None)
            self.metafields.pop(gid, None)

    def gid_of(self, handle: str) -> str:
        return next(g for g, h in self.products.items() if h == handle)

    # -- called by the handler --------------------------------------------------------------------

    def answer(self, token: str | None, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.tokens_seen.append(token or "")
        if token != self.token:
            self.answers["401"] += 1
            return 401, BAD_TOKEN, {}
        with self._lock:
            self.requests += 1
            failure = self.fail.pop(self.requests, None)
        if failure is not None:
            self.answers[str(failure[0])] += 1
            return failure[0], {"errors": "scripted failure"}, failure[1]
        try:
            request = json.loads(body)
            query, variables = request["query"], request.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return 400, {"errors": [{"message": "No query string was present"}]}, {}
        with self._lock:
            return 200, self._run(str(query), variables), {}

    def _run(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        is_set = query.startswith("mutation")
        if is_set:
            self.sets += 1
            if self.sets in self.drain_on_set:  # once: the retry of the same call finds a refilling bucket
                self.drain_on_set.discard(self.sets)
                self._refill()
                self._available = 0.0
            gone = self.delete_on_set.pop(self.sets, None)
            if gone is not None:
                self.products.pop(gone, None)
                self.metafields.pop(gone, None)
        requested = SET_COST if is_set else _read_cost(query)
        self._refill()
        if requested > self._available:
            self.answers["throttled"] += 1
            if is_set:
                self.sets -= 1  # it ran nothing: the next try is the same call
            error = {"message": "Throttled", "extensions": {"code": "THROTTLED",
                     "documentation": "https://shopify.dev/api/usage/rate-limits"}}  # fmt: skip
            return {"errors": [error], "extensions": self._cost(requested, None)}
        self._available -= requested
        data, errors = self._execute(query, variables, is_set)
        if errors:
            self._available += requested
            return {"errors": errors, "extensions": self._cost(requested, 0)}
        actual = SET_COST if is_set else max(1, sum(1 + len(_nodes(n)) for n in _products(data)))
        self._available += requested - actual  # Shopify refunds the difference between requested and actual
        return {"data": data, "extensions": self._cost(requested, actual)}

    def _execute(self, query: str, variables: dict[str, Any], is_set: bool) -> tuple[Any, list[dict[str, Any]]]:
        if is_set:
            if not SET_MUTATION.match(query):
                return None, [_error("mutation not understood by the fake", "undefinedField")]
            self.answers["set"] += 1
            return self._set(variables.get("metafields"))
        if re.search(r"\bshop\s*\{", query):
            self.answers["shop"] += 1
            return {"shop": {"name": "Fake store", "myshopifyDomain": "fake.myshopify.com"}}, []
        namespace, first = _connection(query)
        if "nodes(ids: $ids)" in query:
            self.answers["read"] += 1
            ids = variables.get("ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 250:
                return None, [_error("Variable $ids of type [ID!]! was provided invalid value", "INVALID_VARIABLE")]
            return {"nodes": [self._product(i, namespace, first) for i in ids]}, []
        aliases = BY_HANDLE.findall(query)
        if aliases:
            self.answers["read"] += 1
            declared = set(re.findall(r"\$(\w+): String!", query))
            if any(var not in declared or not isinstance(variables.get(var), str) for _, var in aliases):
                return None, [_error("Variable of type String! was provided invalid value", "INVALID_VARIABLE")]
            by_handle = {h: g for g, h in self.products.items()}
            return {a: self._product(by_handle.get(variables[v], ""), namespace, first) for a, v in aliases}, []
        return None, [_error("Field doesn't exist on type 'QueryRoot' (the fake)", "undefinedField")]

    def _product(self, gid: str, namespace: str, first: int) -> dict[str, Any] | None:
        if gid not in self.products:
            return None
        held = [(k.split(".", 1), v) for k, v in sorted(self.metafields.get(gid, {}).items())]
        nodes = [{"namespace": ns, "key": key, "value": v} for (ns, key), v in held if ns == namespace][:first]
        return {"id": gid, "handle": self.products[gid], "metafields": {"nodes": nodes}}

    def _set(self, inputs: Any) -> tuple[Any, list[dict[str, Any]]]:
        if not isinstance(inputs, list) or not inputs or not all(_valid_input(m) for m in inputs):
            return None, [_error("Variable $metafields of type [MetafieldsSetInput!]! was provided invalid value",
                                 "INVALID_VARIABLE")]  # fmt: skip
        if len(inputs) > MAX_INPUTS:
            message = f"The input array size of {len(inputs)} is greater than the maximum allowed of {MAX_INPUTS}."
            return None, [_error(message, "MAX_INPUT_SIZE_EXCEEDED")]
        user_errors = [_user_error(i, m, self.products) for i, m in enumerate(inputs)]
        user_errors = [e for e in user_errors if e]
        if user_errors:  # atomic: nothing is set when any entry fails
            return {"metafieldsSet": {"metafields": [], "userErrors": user_errors}}, []
        out = []
        for m in inputs:
            name = f"{m.get('namespace')}.{m['key']}"
            self.metafields.setdefault(m["ownerId"], {})[name] = m["value"]
            self.writes[(m["ownerId"], name)] += 1
            out.append({"namespace": m.get("namespace"), "key": m["key"], "value": m["value"],
                        "owner": {"id": m["ownerId"]}})  # fmt: skip
        if self.hold_after_set == self.sets:  # the writes are in; the client dies before it hears so
            self._lock.release()
            try:
                self.holding.set()
                self.release.wait(20)
            finally:
                self._lock.acquire()
        return {"metafieldsSet": {"metafields": out, "userErrors": []}}, []

    def _refill(self) -> None:
        now = time.monotonic()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        status = {"maximumAvailable": self.maximum, "currentlyAvailable": round(self._available, 1),
                  "restoreRate": self.restore_rate}  # fmt: skip
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}}


def _connection(query: str) -> tuple[str, int]:
    match = CONNECTION.search(query)
    return (match.group(1), int(match.group(2))) if match else ("", 0)


def _read_cost(query: str) -> int:
    """Shopify's rule of thumb: each object 1, a connection 2 + its size; nodes(ids) by the ids' count."""
    _, first = _connection(query)
    n = len(BY_HANDLE.findall(query)) or 1
    return 1 if re.search(r"\bshop\s*\{", query) else n * (1 + first + 2)


def _products(data: Any) -> list[dict[str, Any]]:
    values = data.get("nodes", []) if "nodes" in data else list(data.values())
    return [v for v in values if isinstance(v, dict) and "metafields" in v]


def _nodes(product: dict[str, Any]) -> list[Any]:
    return product["metafields"]["nodes"]


def _error(message: str, code: str) -> dict[str, Any]:
    return {"message": message, "locations": [{"line": 1, "column": 1}], "extensions": {"code": code}}


def _valid_input(m: Any) -> bool:
    if not isinstance(m, dict) or not set(m) <= INPUT_KEYS or not {"ownerId", "key", "value"} <= set(m):
        return False
    return all(isinstance(m.get(k), str) for k in ("ownerId", "key", "value", "namespace", "type") if k in m)


def _user_error(i: int, m: dict[str, Any], products: dict[str, str]) -> dict[str, Any] | None:
    if not OWNER.match(m["ownerId"]) or m["ownerId"] not in products:
        return {"field": ["metafields", str(i), "ownerId"], "message": "Owner does not exist", "code": "INVALID",
                "elementIndex": i}  # fmt: skip
    if m.get("type") not in TYPES:
        return {"field": ["metafields", str(i), "type"], "message": "Type is invalid", "code": "INVALID_TYPE",
                "elementIndex": i}  # fmt: skip
    if not KEY.match(m["key"]) or not KEY.match(m.get("namespace") or "xx"):
        return {"field": ["metafields", str(i), "key"], "message": "Key is invalid", "code": "INVALID",
                "elementIndex": i}  # fmt: skip
    if not m["value"] or len(m["value"]) > 255 or "\n" in m["value"]:
        return {"field": ["metafields", str(i), "value"], "message": "Value is invalid for single line text",
                "code": "INVALID_VALUE", "elementIndex": i}  # fmt: skip
    return None


class _Handler(BaseHTTPRequestHandler):
    admin: AdminStore  # set on the per-server subclass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not ENDPOINT.match(urlsplit(self.path).path):
            self._send(404, b"<html><body>Not found</body></html>", "text/html; charset=utf-8", {})
            return
        status, payload, headers = self.admin.answer(self.headers.get("X-Shopify-Access-Token"), body)
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def do_GET(self) -> None:  # the storefront's products.json, so a test can ingest from this very store
        parts = urlsplit(self.path)
        if self.admin.storefront is None:
            self._send(404, b"<html><body>Not found</body></html>", "text/html; charset=utf-8", {})
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, data, content_type, headers = self.admin.storefront.answer(parts.path, query)
        self._send(status, data.encode() if isinstance(data, str) else data, content_type, headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client was killed while the answer was on its way
            pass

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@contextmanager
def serve_admin(admin: AdminStore) -> Iterator[str]:
    """Serve ``admin`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    with serve_handler(type("Handler", (_Handler,), {"admin": admin})) as url:
        try:
            yield url
        finally:
            admin.release.set()  # a held answer lets go before the server stops (and joins its threads)
