"""Shopify stores: a polite, incremental crawler of the public products.json (paging, cap, robots)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from sveta.catalog.records import ProductRecord
from sveta.catalog.store import CatalogStore
from sveta.errors import ConfigError, SourceError
from sveta.ingest.pipeline import CrawlState, IngestReport, run_ingest
from sveta.ingest.robots import RobotsRules
from sveta.ingest.shopify_records import product_record
from sveta.net import check_url, make_client, retry_after_s
from sveta.progress import Advance
from sveta.settings import Settings

if TYPE_CHECKING:
    from sveta.ingest.sources import SourceOptions


class _PageCapReached(Exception):
    """Shopify's 400 once page * limit > 25,000: the listing cannot be read further."""


class ShopifyCrawler:
    """Reads one store's products, one request at a time, obeying robots.txt, delays and Retry-After."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client,
        settings: Settings,
        state: CrawlState,
        log: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        check_url(self.base_url, settings.allowed_private_hosts)
        self.client, self.settings, self.state, self.log = client, settings, state, log
        self._sleep, self._clock = sleep, clock
        self.delay = settings.crawl_delay_s
        self._last_request: float | None = None
        self._robots = RobotsRules(None, "")

    # -- the listing ------------------------------------------------------------------------------

    def products(self) -> Iterator[ProductRecord]:
        """Every product of the store, each once; raises SourceError when the store cannot be read."""
        self._load_robots()
        seen: set[str] = set()
        try:
            yield from self._new_records("/products.json", seen)
        except _PageCapReached:
            yield from self._via_collections(seen)

    def _via_collections(self, seen: set[str]) -> Iterator[ProductRecord]:
        # Past 25,000 products the only public listing left is collection by collection. Products in no
        # collection (or past a collection's own cap) stay unseen, so this read never marks anything gone.
        self.state.complete = False
        before = len(seen)
        self.log(f"products.json stops at 25,000 items ({before:,} read); reading /collections.json next")
        handles = [c["handle"] for c in self._listing("/collections.json", "collections") if c.get("handle")]
        for handle in handles:
            path = f"/collections/{quote(handle, safe='')}/products.json"
            if not self._robots.allows(self._page_url(path, 1)):
                self._note(f"robots.txt disallows {path}; skipped that collection")
                continue
            try:
                yield from self._new_records(path, seen)
            except _PageCapReached:
                self._note(f"collection {handle!r} also stops at 25,000 items; later ones may be missing")
        self._note(
            f"products.json stops at 25,000 items; continued through {len(handles):,} collections, "
            f"{len(seen) - before:,} more products"
        )

    def _new_records(self, path: str, seen: set[str]) -> Iterator[ProductRecord]:
        for raw in self._listing(path, "products"):
            if raw.get("id") is not None and str(raw["id"]) not in seen:
                seen.add(str(raw["id"]))
                yield product_record(raw, self.base_url)

    def _listing(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        """The items of a paged listing, page 1 on, until the first empty page."""
        previous: list[object] | None = None
        page = 1
        while True:
            url = self._page_url(path, page)
            self._require_allowed(url)
            items = self._read_page(url, key)
            self.state.pages += 1
            if not items:
                return
            ids = [item.get("id") for item in items]
            if ids == previous:  # a server that ignores ?page= would otherwise be read forever
                raise SourceError(
                    f"{url} repeats page {page - 1}: the store ignores the page parameter",
                    "this does not behave like a Shopify store; try a CSV feed",
                )
            previous = ids
            yield from items
            page += 1

    def _page_url(self, path: str, page: int) -> str:
        return f"{self.base_url}{path}?limit={self.settings.crawl_page_limit}&page={page}"

    def _read_page(self, url: str, key: str) -> list[dict[str, Any]]:
        response = self._get(url)
        if response.status_code == 400 and _mentions_cap(response.text):
            raise _PageCapReached
        self._raise_for_status(response, url)
        content_type = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
        data = _json_or_none(response) if "json" in content_type else None
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            answered = content_type if data is None else f"JSON without a {key!r} list"
            raise SourceError(
                f"{url}: this store does not expose {urlsplit(url).path} (it answered {answered})",
                "check the address; for a Shopify store try https://{shop}.myshopify.com, or use a CSV feed",
            )
        return [item for item in items if isinstance(item, dict)]

    # -- robots.txt -------------------------------------------------------------------------------

    def _load_robots(self) -> None:
        if not self.settings.respect_robots:
            return
        response = self._get(f"{self.base_url}/robots.txt")
        # RFC 9309: a 4xx robots.txt means no rules; a 5xx that outlived the retries already raised.
        text = response.text if response.status_code == 200 else None
        agent = self.client.headers.get("User-Agent", self.settings.user_agent)
        self._robots = RobotsRules(text, agent)
        asked = self._robots.crawl_delay
        if asked is not None and asked > self.delay:
            self.delay = asked
            self.log(f"robots.txt asks for {asked:g} s between requests; waiting that long")

    def _require_allowed(self, url: str) -> None:
        if not self._robots.allows(url):
            raise SourceError(
                f"robots.txt of {self.base_url} disallows {urlsplit(url).path} for our crawler",
                "ask the shop for a feed, or, for your own shop only, set SVETA_RESPECT_ROBOTS=false",
            )

    # -- HTTP -------------------------------------------------------------------------------------

    def _get(self, url: str) -> httpx.Response:
        """One GET, retried on 429, 5xx and network errors with backoff; spaced from the last request."""
        retries = self.settings.crawl_max_retries
        wait = 0.0
        for attempt in range(retries + 1):
            self._pause(wait)
            try:
                response = self.client.get(url)
            except httpx.TransportError as exc:
                problem = f"network error ({type(exc).__name__}: {exc})"
                retry_after = None
            except httpx.RequestError as exc:  # too many redirects, undecodable body: retrying will not help
                raise SourceError(f"{url}: {type(exc).__name__}: {exc}", "check the store's address") from exc
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem, retry_after = f"HTTP {response.status_code}", _retry_after(response)
            finally:
                self._last_request = self._clock()
            if attempt == retries:
                raise SourceError(
                    f"{url}: {problem}; gave up after {retries + 1} attempts",
                    "the store is down or throttling us; try later or raise SVETA_CRAWL_DELAY_S",
                )
            wait = self._backoff(attempt, retry_after)
            self.log(f"{problem} from {url}; waiting {wait:.1f} s (retry {attempt + 1}/{retries})")
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        wait = retry_after if retry_after is not None else self.settings.crawl_backoff_s * 2**attempt
        return min(wait, self.settings.crawl_max_backoff_s)

    def _pause(self, at_least: float) -> None:
        """Sleep so this request starts >= the crawl delay after the last one ended (and >= ``at_least``)."""
        since = self._clock() - self._last_request if self._last_request is not None else float("inf")
        wait = max(at_least, self.delay - since)
        if wait > 0:
            self._sleep(wait)

    def _raise_for_status(self, response: httpx.Response, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            raise SourceError(
                f"{url}: HTTP {status}: the store refuses crawlers (or is password-protected)",
                "ask the shop for a product feed; sveta does not get around a refusal",
            )
        if status == 404:
            raise SourceError(
                f"no {urlsplit(url).path.lstrip('/')} at {self.base_url} ({url} answered 404)",
                "is this a Shopify store? try https://{shop}.myshopify.com, or use a CSV feed",
            )
        raise SourceError(f"{url}: HTTP {status}: {response.text[:200]!r}", "check the store's address")

    def _note(self, message: str) -> None:
        self.state.notes.append(message)
        self.log(message)


def ingest_shopify(
    catalog: CatalogStore,
    url: str,
    *,
    settings: Settings,
    client: httpx.Client | None = None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_progress: Advance | None = None,
) -> IngestReport:
    """Crawl one store into the catalog; products it no longer lists are marked gone."""
    own_client = client is None
    client = client or make_client(settings)
    try:
        state = CrawlState()
        crawler = ShopifyCrawler(url, client=client, settings=settings, state=state, log=log, sleep=sleep, clock=clock)
        base = crawler.base_url
        return run_ingest(
            catalog,
            name=source_name(base),
            kind="shopify",
            location=base,
            records=crawler.products(),
            state=state,
            complete=True,
            batch_size=settings.crawl_page_limit,  # one commit (and one progress step) per page
            on_progress=on_progress,
        )
    finally:
        if own_client:
            client.close()


@dataclass
class ShopifySource:
    """One store, named by its host; crawled politely (robots.txt, delays, Retry-After) on every ingest."""

    kind: str
    name: str
    location: str  # the store's base URL
    options: SourceOptions

    def ingest(self, catalog: CatalogStore, *, on_progress: Advance | None = None) -> IngestReport:
        o = self.options
        return ingest_shopify(
            catalog, self.location, settings=o.settings, client=o.client, log=o.log, on_progress=on_progress
        )


def open_shopify(kind: str, location: str, options: SourceOptions) -> ShopifySource:
    """The store at ``location`` (``shop.example``, ``https://shop.example/collections/x`` ...)."""
    base = normalize_base_url(location)
    return ShopifySource(kind, source_name(base), base, options)


# -- URLs -----------------------------------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """``store.example``, ``https://store.example/collections/x`` -> ``https://store.example``."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:  # an unclosed [IPv6 literal, a port that is no number or out of range
        host, port = "", None
    if not host:
        raise ConfigError(f"not a store address: {url!r}", "give the shop's address, e.g. https://shop.example")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme.lower()}://{netloc}"


def source_name(base_url: str) -> str:
    """The catalog's name for a store: its host (and port, when one was given)."""
    return urlsplit(base_url).netloc


# -- small helpers --------------------------------------------------------------------------------


def _mentions_cap(body: str) -> bool:
    lowered = body.lower()
    return "25000" in lowered.replace(",", "") or "limit exceeds" in lowered or "exceeds the" in lowered


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, from a number or an HTTP date; None when absent or unreadable."""
    return retry_after_s(response.headers.get("retry-after"))
