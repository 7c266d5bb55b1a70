"""Shopify stores: a polite crawler of the public products.json, and its conversion to ProductRecords."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from sveta.catalog.store import CatalogStore
from sveta.errors import ConfigError, SourceError
from sveta.ingest.pipeline import CrawlState, IngestReport, run_ingest
from sveta.ingest.records import ImageRecord, ProductRecord, VariantRecord
from sveta.ingest.robots import RobotsRules
from sveta.net import check_url, make_client
from sveta.settings import Settings

# Option names stores use for size and colour (compared lower-cased).
_SIZE_NAMES = {
    "size", "sizes", "taille", "größe", "grösse", "groesse", "talla", "taglia", "maat", "storlek",
    "størrelse", "koko", "rozmiar", "tamanho", "beden", "サイズ", "尺码",
}
_COLOUR_NAMES = {
    "colour", "color", "colours", "colors", "couleur", "farbe", "kleur", "colore", "färg", "farge",
    "farve", "väri", "kolor", "cor", "renk", "カラー", "颜色",
}


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
        # Past 25,000 products the only complete public listing left is collection by collection.
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
                raise SourceError(f"{url} repeats page {page - 1}: the store ignores the page parameter",
                                  "this does not behave like a Shopify store; try a CSV feed")
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
            raise SourceError(f"no {urlsplit(url).path.lstrip('/')} at {self.base_url} ({url} answered 404)",
                              "is this a Shopify store? try https://{shop}.myshopify.com, or use a CSV feed")
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
) -> IngestReport:
    """Crawl one store into the catalog; products it no longer lists are marked gone."""
    own_client = client is None
    client = client or make_client(settings)
    try:
        state = CrawlState()
        crawler = ShopifyCrawler(url, client=client, settings=settings, state=state, log=log, sleep=sleep)
        base = crawler.base_url
        return run_ingest(catalog, name=source_name(base), kind="shopify", location=base,
                          records=crawler.products(), state=state, complete=True)
    finally:
        if own_client:
            client.close()


# -- URLs -----------------------------------------------------------------------------------------


def normalize_base_url(url: str) -> str:
    """``store.example``, ``https://store.example/collections/x`` -> ``https://store.example``."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        host = ""
    if not host:
        raise ConfigError(f"not a store address: {url!r}", "give the shop's address, e.g. https://shop.example")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme.lower()}://{netloc}"


def source_name(base_url: str) -> str:
    """The catalog's name for a store: its host (and port, when one was given)."""
    return urlsplit(base_url).netloc


# -- conversion -----------------------------------------------------------------------------------


def product_record(raw: dict[str, Any], base_url: str) -> ProductRecord:
    """One products.json product as a ProductRecord (the raw JSON is kept)."""
    handle = raw.get("handle") or None
    option_names = _option_names(raw.get("options"))
    raw_variants = [v for v in raw.get("variants") or [] if isinstance(v, dict)]
    variants = [_variant(v, option_names, i) for i, v in enumerate(raw_variants)]
    return ProductRecord(
        external_id=str(raw["id"]),
        title=str(raw.get("title") or handle or raw["id"]),
        handle=handle,
        description=html_to_text(raw.get("body_html")),
        brand=raw.get("vendor") or None,
        product_type=raw.get("product_type") or None,
        tags=_tags(raw.get("tags")),
        currency=None,  # products.json does not say; the store's currency is on its pages only
        url=f"{base_url}/products/{handle}" if handle else None,
        available=any(v.available for v in variants),
        created_at=_datetime(raw.get("created_at")),
        updated_at=_datetime(raw.get("updated_at")),
        raw=raw,
        variants=variants,
        images=[_image(img, i) for i, img in enumerate(raw.get("images") or []) if _has_src(img)],
    )


def _option_names(options: object) -> list[str]:
    names = []
    for option in options if isinstance(options, list) else []:
        name = option.get("name") if isinstance(option, dict) else option
        names.append(str(name or ""))
    return names


def _variant(raw: dict[str, Any], option_names: list[str], index: int) -> VariantRecord:
    options: dict[str, str] = {}
    for i in range(3):
        value = raw.get(f"option{i + 1}")
        if value in (None, ""):
            continue
        name = option_names[i] if i < len(option_names) and option_names[i] else f"Option {i + 1}"
        if name == "Title" and value == "Default Title":  # Shopify's placeholder for "no options"
            continue
        options[name] = str(value)
    return VariantRecord(
        external_id=str(raw.get("id")),
        title=raw.get("title") or None,
        options=options,
        size=_option_value(options, _SIZE_NAMES),
        colour=_option_value(options, _COLOUR_NAMES),
        sku=raw.get("sku") or None,
        price=_money(raw.get("price")),
        compare_at_price=_money(raw.get("compare_at_price")),
        available=bool(raw.get("available", True)),
        position=int(raw.get("position") or index + 1),
    )


def _option_value(options: dict[str, str], names: set[str]) -> str | None:
    return next((value for name, value in options.items() if name.strip().lower() in names), None)


def _image(raw: dict[str, Any], index: int) -> ImageRecord:
    src = str(raw["src"])
    return ImageRecord(
        url="https:" + src if src.startswith("//") else src,  # older themes give protocol-relative URLs
        position=int(raw.get("position") or index + 1),
        width=raw.get("width"),
        height=raw.get("height"),
        alt=raw.get("alt") or None,
        variant_ids=[str(v) for v in raw.get("variant_ids") or []],
    )


def _has_src(raw: object) -> bool:
    # Only web URLs: a store must not be able to point the image cache at local files (file://).
    if not isinstance(raw, dict) or not raw.get("src"):
        return False
    return str(raw["src"]).lower().startswith(("https://", "http://", "//"))


def _tags(tags: object) -> list[str]:
    # Current stores send an array; older ones a comma-separated string.
    items = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    return [str(t).strip() for t in items if str(t).strip()]


def _money(value: object) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: object) -> str | None:
    """Shopify's body_html as plain text: tags dropped, entities decoded, one line per block."""
    if not isinstance(html, str) or not html.strip():
        return None
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return "\n".join(line for line in lines if line) or None


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
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
