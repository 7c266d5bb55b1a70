"""`create_app`: the FastAPI app over the library, one router per area, errors as JSON, metrics, upload limits."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError

from sveta._version import __version__
from sveta.api import errors
from sveta.api.crawls import CrawlJobs
from sveta.api.deps import AppState
from sveta.api.metrics import Metrics, MetricsMiddleware
from sveta.api.routers import audit, complete, health, look, products, search, sources, stats, tag, web
from sveta.api.uploads import BodyLimit
from sveta.errors import ConfigError
from sveta.settings import Settings

log = logging.getLogger("sveta.api")
DESCRIPTION = """The sveta catalog engine over HTTP: browse the catalog, search by photo, URL or text, find the
garments in a photo, complete the look, tag photos, audit listings, register and crawl sources, catalog stats
and a 2-D map of its photos. The web page is at `/`.

Errors are JSON: `{"error": {"code", "message", "hint"}}`. Writes need the `X-API-Key` header (SVETA_API_KEY);
reads are open unless SVETA_API_READ_KEY_REQUIRED is set."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app with its own settings (default: read from the environment), catalog, caches and metrics."""
    settings = settings or _settings_from_env()
    state = AppState(settings=settings, metrics=Metrics())
    state.crawls = CrawlJobs(settings, state.catalog)
    app = FastAPI(title="sveta", version=__version__, description=DESCRIPTION, lifespan=_lifespan)
    app.state.sveta = state
    errors.install(app)
    for module in (health, products, search, look, complete, tag, audit, sources, stats, web):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: counts the 413s too
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: AppState = app.state.sveta
    syncing = start_background_sync(state)
    yield
    if syncing is not None:
        syncing.set()
    if state.crawls is not None:
        state.crawls.join(timeout=5)
    state.close()


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


def _settings_from_env() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"SVETA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad setting: {problems}", "fix or unset that environment variable") from None
