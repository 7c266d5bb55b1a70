"""A small Shopify Admin GraphQL client: paced by the store's cost bucket, retried when throttled, token kept secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from sveta.errors import ConfigError, SourceError, SvetaError
from sveta.ingest.shopify import normalize_base_url
from sveta.net import check_url, make_client, retry_after_s
from sveta.settings import Settings

ATTEMPTS = 8  # tries of one query through throttling and passing server errors
BACKOFF_S = 0.5  # the first wait after a 429 without Retry-After or a 5xx; doubled each time, capped
MAX_BACKOFF_S = 30.0
_RETRIED_STATUS = {500, 502, 503, 504}  # passing server trouble; 501 and the rest say this is no Admin API
_STORE_HINT = "give the store's Shopify address, e.g. https://your-shop.myshopify.com"


@dataclass
class Bucket:
    """The store's leaky bucket as its last answer described it (``extensions.cost.throttleStatus``)."""

    maximum: float
    available: float
    rate: float  # points restored per second
    at: float  # clock() when it was read

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` points are available (a cost above the bucket's size waits for a full one)."""
        have = min(self.maximum, self.available + self.rate * max(0.0, now - self.at))
        need = min(cost, self.maximum) - have
        return need / self.rate if need > 0 and self.rate > 0 else 0.0


@dataclass
class CallStats:
    """What talking to the store took: requests sent, waits for the bucket, query cost, retries by cause."""

    requests: int = 0
    throttled_waits: int = 0
    waited_s: float = 0.0
    cost_requested: int = 0
    cost_actual: int = 0
    retries: dict[str, int] = field(default_factory=lambda: {"throttled": 0, "http_429": 0, "server_error": 0})


def store_address(url: str) -> tuple[str, str]:
    """(base URL, store name) of ``shop.myshopify.com``, ``https://shop.myshopify.com/admin`` or
    ``http://127.0.0.1:PORT``: the base keeps scheme, host and port; the name is host[:port], as ingest names it."""
    base = normalize_base_url(url)
    scheme, _, netloc = base.partition("://")
    if scheme not in ("http", "https"):
        raise ConfigError(f"not a store address: {url[:200]!r}", _STORE_HINT)
    return base, netloc


class AdminClient:
    """Posts GraphQL queries to one store's Admin API. Before each it waits until the store's bucket holds the
    query's estimated cost; it retries THROTTLED answers, 429s and passing 5xx with backoff; a refused token, an
    address that is no Admin API or any other GraphQL error is a SvetaError. The token is sent in a header only."""

    def __init__(
        self,
        url: str,
        token: SecretStr,
        settings: Settings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url, self.store = store_address(url)
        self.endpoint = f"{self.base_url}/admin/api/{settings.shopify_api_version}/graphql.json"
        check_url(self.endpoint, settings.allowed_private_hosts)
        self._token = token
        self._own_client = client is None
        self._client = client or make_client(settings)
        self._sleep, self._clock = sleep, clock
        self.bucket: Bucket | None = None
        self.stats = CallStats()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def query(self, document: str, variables: dict[str, Any] | None = None, *, cost: int = 1) -> dict[str, Any]:
        """The ``data`` of one query whose requested cost is about ``cost`` points."""
        backoff = BACKOFF_S
        for _ in range(ATTEMPTS):
            self._pace(cost)
            response = self._post(document, variables or {})
            if response is None or response.status_code in _RETRIED_STATUS:
                self.stats.retries["server_error"] += 1
                backoff = self._back_off(backoff)
                continue
            if response.status_code == 429:  # the REST-style answer to a flood: wait as told
                self.stats.retries["http_429"] += 1
                self._wait(retry_after_s(response.headers.get("Retry-After")) or backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            body = self._body(response)
            self._note_cost(body)
            errors = body.get("errors") or []
            if any(_code(e) == "THROTTLED" for e in errors):
                self.stats.retries["throttled"] += 1  # the bucket just read says how long to wait
                continue
            if errors:
                raise _graphql_error(errors, self.base_url)
            data = body.get("data")
            if not isinstance(data, dict):
                raise self._not_admin_api("an answer without data")
            return data
        raise SourceError(
            f"{self.base_url} kept refusing or failing after {ATTEMPTS} tries (throttled or server errors)",
            "run the same command again later: what was written is recorded and will not be written twice",
        )

    # -- one request -------------------------------------------------------------------------------

    def _post(self, document: str, variables: dict[str, Any]) -> httpx.Response | None:
        """The store's answer, or None when the connection failed (a retry may get through)."""
        self.stats.requests += 1
        headers = {"X-Shopify-Access-Token": self._token.get_secret_value(), "Accept": "application/json"}
        try:
            return self._client.post(self.endpoint, json={"query": document, "variables": variables}, headers=headers)
        except httpx.TransportError:
            return None

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise ConfigError(
                f"the store {self.base_url} refused the token (wrong or expired, or without the product scopes): "
                f"HTTP {status}",
                "give --token-env the name of a variable holding the store's Admin API access token "
                "(shpat_...) of an app with the read_products and write_products scopes",
            )
        if status == 404:
            raise self._not_admin_api("HTTP 404 at /admin/api/.../graphql.json")
        if "json" not in response.headers.get("Content-Type", "").lower():
            raise self._not_admin_api(f"HTTP {status}, {response.headers.get('Content-Type') or 'no content type'}")
        try:
            body = response.json()
        except ValueError:
            raise self._not_admin_api(f"HTTP {status} with a body that is not JSON") from None
        if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
            raise self._not_admin_api(f"HTTP {status} with JSON that is no GraphQL answer")
        if status >= 400 and not body.get("errors"):
            raise SourceError(f"{self.base_url} answered HTTP {status}", _STORE_HINT)
        return body

    def _not_admin_api(self, what: str) -> SourceError:
        return SourceError(f"{self.base_url} is not a Shopify store's Admin API: {what}", _STORE_HINT)

    # -- the bucket --------------------------------------------------------------------------------

    def _note_cost(self, body: dict[str, Any]) -> None:
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            self.bucket = Bucket(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
                self._clock(),
            )
        except (KeyError, TypeError, ValueError):
            return  # an answer without cost data (an error before the query ran) leaves the last view
        if cost.get("actualQueryCost") is not None:  # a THROTTLED answer ran nothing and cost nothing
            self.stats.cost_requested += int(cost.get("requestedQueryCost") or 0)
            self.stats.cost_actual += int(cost["actualQueryCost"])

    def _pace(self, cost: int) -> None:
        if self.bucket is not None:
            self._wait(self.bucket.wait_for(cost, self._clock()))

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.throttled_waits += 1
            self.stats.waited_s += seconds
            self._sleep(seconds)

    def _back_off(self, backoff: float) -> float:
        self._wait(backoff)
        return min(MAX_BACKOFF_S, backoff * 2)


def _code(error: Any) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return extensions.get("code") if isinstance(extensions, dict) else None


def _graphql_error(errors: Any, base_url: str) -> SvetaError:
    """A GraphQL error answer as the SvetaError that names it; a refused scope is the token's fault."""
    if isinstance(errors, str):  # Shopify's REST-style {"errors": "..."} (e.g. a 401's body)
        errors = [{"message": errors}]
    messages = "; ".join(str(e.get("message", e))[:300] if isinstance(e, dict) else str(e)[:300] for e in errors[:3])
    if any(_code(e) == "ACCESS_DENIED" for e in errors):
        return ConfigError(
            f"the store {base_url} refused the token for this: {messages}",
            "give the app the read_products and write_products scopes, then use its new token",
        )
    return SourceError(
        f"the store {base_url} answered with an error: {messages}",
        "check the API version (SVETA_SHOPIFY_API_VERSION) and that the store's sveta.* metafield definitions exist",
    )
