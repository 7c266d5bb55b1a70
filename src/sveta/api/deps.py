"""What endpoints share: settings, the catalog (opened once), engines per index version, one model cache, keys."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader

from sveta.api.errors import ApiError
from sveta.catalog.models import MAX_ID
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.errors import InputError
from sveta.index.base import Filter
from sveta.learn.store import ModelCache
from sveta.settings import Settings

if TYPE_CHECKING:
    from sveta.api.crawls import CrawlJobs
    from sveta.api.metrics import Metrics
    from sveta.api.overload import HeavyPool
    from sveta.engines.complete import Completer
    from sveta.engines.look import Looker
    from sveta.engines.search import Searcher

T = TypeVar("T")
log = logging.getLogger(__name__)
KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False, description="The key set in SVETA_API_KEY.")


class Fresh(Generic[T]):
    """A value made for a key (the index version), remade when the key changes, outside any lock a request waits
    on: while one caller makes the new value, the others keep the old one (they wait only when there is none)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only to read or swap (key, value)
        self._making = threading.Lock()  # held by the one caller making a value
        self._key: object = None
        self._value: T | None = None

    def get(self, key: object, make: Callable[[T | None], T]) -> T:
        """The value for ``key``; ``make(old value)`` makes it when the key changed."""
        with self._lock:
            key_now, old = self._key, self._value
        if old is not None and key_now == key:
            return old
        if not self._making.acquire(blocking=old is None):
            return old  # type: ignore[return-value]  # another caller is making the new one: keep serving this
        try:
            with self._lock:
                if self._value is not None and self._key == key:
                    return self._value  # made while this caller waited
            value = make(old)
            with self._lock:
                self._key, self._value = key, value
            return value
        finally:
            self._making.release()


@dataclass
class _Live:
    """One index version's engines; the Completer and Looker are made on first use (one caller makes each)."""

    searcher: Searcher
    completer: Completer | None = None
    looker: Looker | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Engines:
    """The Searcher, Completer and Looker of the live index version; all are rebuilt when CURRENT changes.

    A new version's engines are made outside any lock that requests wait on, and swapped in together: requests
    keep the old ones until then (a million-product index takes seconds to read, its Completer as long again),
    and the old index is freed at the swap, not whenever the next request of each engine comes.
    """

    def __init__(self, settings: Settings, catalog: CatalogStore, models: ModelCache) -> None:
        self.settings, self.catalog, self.models = settings, catalog, models
        self.look_lock = threading.Lock()  # the pose model is not known to be thread-safe
        self._engines: Fresh[_Live] = Fresh()

    def current_version(self) -> str | None:
        from sveta.index.versions import read_current

        return read_current(self.settings.index_dir)

    def searcher(self) -> Searcher:
        return self._live().searcher

    def completer(self) -> Completer:
        live = self._live()
        if live.completer is None:
            with live.lock:
                if live.completer is None:
                    live.completer = self._new_completer(live.searcher)
        return live.completer

    def looker(self) -> Looker:
        from sveta.engines.look import Looker

        live = self._live()
        with live.lock:
            if live.looker is None:
                live.looker = Looker(live.searcher, models=self.models)
            return live.looker

    def _live(self) -> _Live:
        return self._engines.get(self.current_version(), self._new_live)

    def _new_live(self, old: _Live | None) -> _Live:
        """The new version's Searcher (its index loaded), and its Completer and Looker where the old had them."""
        from sveta.engines.look import Looker
        from sveta.engines.search import Searcher

        searcher = Searcher(self.settings, self.catalog)
        _ = searcher.index  # load now: a missing index is the caller's error, not a later one
        live = _Live(searcher)
        if old is not None and old.completer is not None:
            try:
                live.completer = self._new_completer(searcher)
            except Exception:  # searches must not fail for it: the next complete request makes it, or says why
                log.warning("could not prepare complete the look for the new index version", exc_info=True)
        if old is not None and old.looker is not None:
            live.looker = Looker(searcher, models=self.models)
        return live

    def _new_completer(self, searcher: Searcher) -> Completer:
        from sveta.engines.complete import Completer

        return Completer(self.catalog, searcher.index, self.settings, self.models)


@dataclass
class AppState:
    """One per app: its settings, its catalog (opened on first use), models, crawl jobs, metrics, caches, and the
    pool heavy requests run in."""

    settings: Settings
    metrics: Metrics
    heavy: HeavyPool
    crawls: CrawlJobs | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    models: ModelCache = field(default_factory=ModelCache)  # the trained models, shared by every engine
    audit_lock: threading.Lock = field(default_factory=threading.Lock)  # one audit at a time
    _catalog: CatalogStore | None = None
    _engines: Engines | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def catalog(self) -> CatalogStore:
        with self._lock:
            if self._catalog is None:
                self._catalog = open_catalog(self.settings.catalog_url, busy_timeout_s=self.settings.db_busy_timeout_s)
            return self._catalog

    def engines(self) -> Engines:
        catalog = self.catalog()
        with self._lock:
            if self._engines is None:
                self._engines = Engines(self.settings, catalog, self.models)
            return self._engines

    def close(self) -> None:
        self.heavy.close()
        if self._catalog is not None:
            self._catalog.engine.dispose()


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.sveta
    return state


def get_settings(request: Request) -> Settings:
    return app_state(request).settings


def get_catalog(request: Request) -> CatalogStore:
    return app_state(request).catalog()


def get_engines(request: Request) -> Engines:
    return app_state(request).engines()


# -- API keys -------------------------------------------------------------------------------------


def require_read(settings: Settings = Depends(get_settings), key: str | None = Security(api_key_header)) -> None:
    """Reads are open unless SVETA_API_READ_KEY (the widget's key) or SVETA_API_READ_KEY_REQUIRED is set; then they
    need the read key or the write key."""
    read_key = settings.api_read_key
    if read_key is not None and key and hmac.compare_digest(key.encode(), read_key.get_secret_value().encode()):
        return
    if read_key is not None and settings.api_key is None:
        if not key:
            raise ApiError(
                401, "this endpoint needs the read key", f"send SVETA_API_READ_KEY in the {KEY_HEADER} header"
            )
        raise ApiError(401, "wrong API key", f"send the key set in SVETA_API_READ_KEY in the {KEY_HEADER} header")
    if settings.api_read_key_required or read_key is not None:
        _check_key(settings, key, "reads")


def require_write(settings: Settings = Depends(get_settings), key: str | None = Security(api_key_header)) -> None:
    """Writes need the key; with no key configured they are refused, unless SVETA_API_OPEN_WRITES allows them."""
    if settings.api_key is None and settings.api_open_writes:
        return
    _check_key(settings, key, "writes")


def _check_key(settings: Settings, key: str | None, what: str) -> None:
    if settings.api_key is None:
        raise ApiError(
            403,
            f"API {what} are disabled: no API key is configured on the server",
            f"set SVETA_API_KEY on the server and send it in the {KEY_HEADER} header"
            + (" (or SVETA_API_OPEN_WRITES=true on a trusted network)" if what == "writes" else ""),
        )
    if not key:
        raise ApiError(401, f"this endpoint needs an API key ({what} are protected)", f"send the {KEY_HEADER} header")
    if not hmac.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise ApiError(401, "wrong API key", f"send the key set in SVETA_API_KEY in the {KEY_HEADER} header")


# -- shared parameters ----------------------------------------------------------------------------

# Every integer id in a path, and every offset, is checked against the catalog's id range here: a larger number
# overflows the database (a 500), a negative one names nothing. Out of range is a 422 that says the range.
RowId = Annotated[int, Path(ge=0, le=MAX_ID, description=f"A catalog id: a whole number from 0 to {MAX_ID}.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="How many to skip (the page's start).")]


def search_filter(
    colour: list[str] | None = Query(None, description="Only this colour (e.g. 'Navy Blue'); repeatable."),
    gender: list[str] | None = Query(None, description="Only this gender (Men, Women, Boys, Girls, Unisex)."),
    brand: list[str] | None = Query(None, description="Only this brand; repeatable."),
    source: list[str] | None = Query(None, description="Only products of this source; repeatable."),
    min_price: float | None = Query(None, ge=0, description="Lowest price."),
    max_price: float | None = Query(None, ge=0, description="Highest price."),
    in_stock: bool = Query(False, description="Only available products."),
) -> Filter:
    """The search filters as query parameters (the category is each endpoint's own: its default differs)."""
    return Filter.of(
        gender=gender,
        colour=colour,
        brand=brand,
        source=source,
        price_min=min_price,
        price_max=max_price,
        in_stock=in_stock,
    )


def product_or_404(catalog: CatalogStore, ref: str) -> int:
    """The catalog id of a product given by catalog id or the source's own id; 404 when there is none."""
    from sveta.catalog.queries import resolve_product

    try:
        return resolve_product(catalog, ref)
    except InputError as exc:
        raise ApiError(404, exc.message, exc.hint) from None
