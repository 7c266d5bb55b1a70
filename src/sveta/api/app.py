"""`create_app`: the FastAPI app over the library, one router per area, errors as JSON, metrics, limits, NUL refused."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from sveta._version import __version__
from sveta.api import errors
from sveta.api.cors import CrossOrigin
from sveta.api.crawls import CrawlJobs
from sveta.api.deps import AppState
from sveta.api.errors import ApiError, documented
from sveta.api.metrics import Metrics, MetricsMiddleware
from sveta.api.overload import HeavyGate, HeavyPool, RateLimit, send_error
from sveta.api.routers import (
    audit,
    complete,
    health,
    insights,
    look,
    products,
    rules,
    search,
    sources,
    stats,
    tag,
    web,
    widget,
)
from sveta.api.uploads import MULTIPART_SLACK, BodyLimit, drain
from sveta.settings import Settings, load_settings

log = logging.getLogger("sveta.api")
DESCRIPTION = """The sveta catalog engine over HTTP: browse the catalog, search by photo, URL or text, find the
garments in a photo, complete the look, tag photos, audit listings, register and crawl sources, catalog stats
and a 2-D map of its photos. The web page is at `/`.

Errors are JSON: `{"error": {"code", "message", "hint"}}`. Writes need the `X-API-Key` header (SVETA_API_KEY);
reads are open unless SVETA_API_READ_KEY (the storefront widget's public key) or SVETA_API_READ_KEY_REQUIRED is set.
The storefront widget is at `/widget.js`; pages of other origins may call the API only when SVETA_CORS_ORIGINS
names them."""
ROUTERS = (health, products, search, look, complete, tag, audit, sources, stats, insights, rules, widget, web)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app with its own settings (default: read from the environment), catalog, caches and metrics."""
    settings = settings or load_settings()
    metrics = Metrics()
    heavy = HeavyPool(settings.api_heavy_workers, settings.api_heavy_queue, settings.api_heavy_timeout_s, metrics)
    metrics.gauge_sources.append(heavy.gauges)
    state = AppState(settings=settings, metrics=metrics, heavy=heavy)
    state.crawls = CrawlJobs(settings, state.catalog)
    # Declaring 422 app-wide replaces FastAPI's {"detail": [...]} schema with the error body every error has.
    app = FastAPI(
        title="sveta", version=__version__, description=DESCRIPTION, lifespan=_lifespan, responses=documented(422)
    )
    app.state.sveta = state
    errors.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    # Outermost last. Turned away before the body is read: over the rate limit (429), then a heavy route with its
    # pool's workers and queue full (503); the body limit applies to what goes on.
    limit = settings.max_upload_bytes
    app.add_middleware(BodyLimit, max_bytes=limit)
    routes = [route for module in ROUTERS for route in module.router.routes]  # in the order the app matches them
    app.add_middleware(HeavyGate, pool=heavy, routes=routes, max_body=limit)
    app.add_middleware(NoNul, max_body=limit)  # before a heavy request takes a place in the pool
    if settings.api_rate_limit:
        app.add_middleware(RateLimit, per_minute=settings.api_rate_limit, max_body=limit, metrics=metrics)
    # Other origins' pages (the storefront widget): preflights answered before the rate limit, every error above
    # readable by an allowed page, a page of any other origin refused with a 403 it can read (api/cors.py).
    app.add_middleware(CrossOrigin, origins=settings.cors_origins, max_body=limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts the 413s, 429s and 503s too
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: AppState = app.state.sveta
    state.heavy.start()  # here, not in create_app: an app is started again after a stop (tests, ASGI servers)
    syncing = start_background_sync(state)
    yield
    if syncing is not None:
        syncing.set()
    if state.crawls is not None:
        state.crawls.join(timeout=5)
    state.close()


class NoNul:
    """ASGI middleware: a NUL (%00) in the path or the query string is a 422 at once. PostgreSQL can neither store
    nor compare text holding one (a driver error deep in a query otherwise), and no name, id or filter has one."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.drain_most = app, max_body + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_nul(scope):
            await self.app(scope, receive, send)
            return
        await drain(receive, self.drain_most)  # a client that sent Connection: close would see a reset otherwise
        error = ApiError(422, "the request has a NUL character (%00)", "remove it from the address", "input_error")
        await send_error(send, error)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


def start_background_sync(state: AppState) -> threading.Event | None:
    """Re-crawl, tag and re-index every SVETA_SYNC_EVERY in a daemon thread; searches keep the old index until the
    new version is published (the engines reload on the CURRENT switch). Returns the event that stops it."""
    from sveta.ops.sync import parse_every, sync_every

    every = state.settings.sync_every.strip()
    if every in ("", "0"):
        return None
    seconds, stop = parse_every(every), threading.Event()

    def loop() -> None:
        if not stop.wait(seconds):  # the first pass one period after start: a server start is not a crawl
            sync_every(state.catalog(), state.settings, seconds, stop, lambda run, error: _record(state, run, error))

    threading.Thread(target=loop, name="sveta-sync", daemon=True).start()
    return stop


def _record(state: AppState, run: Any, error: Exception | None) -> None:
    state.cache["last_sync"] = {"error": str(error)} if run is None else run.as_dict()
    if error is not None:
        log.warning("background sync failed: %s", error)
