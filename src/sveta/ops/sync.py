"""Keeping the catalog fresh: re-crawl every registered source, fetch new photos, tag them, update the index."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sveta.catalog.sources import registered_sources
from sveta.errors import InputError, SvetaError

if TYPE_CHECKING:
    import httpx

    from sveta.catalog.store import CatalogStore
    from sveta.settings import Settings

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class SyncRun:
    """One pass over every source: what each crawl found, what failed, how many were tagged, the index's report."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    tagged: int = 0
    index: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_every(text: str) -> float:
    """'6h', '30m', '1d', '90s' (or plain seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"--every {text!r} is not a duration", "give e.g. 30m, 6h or 1d")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def sync_once(
    catalog: CatalogStore,
    settings: Settings,
    *,
    client: httpx.Client | None = None,
    log: Callable[[str], None] = print,
) -> SyncRun:
    """Crawl every source (one failing does not stop the others), then update the index (published atomically:
    searches keep the old version until the new one is complete) and tag products the model has not seen."""
    from sveta.index.catalog_index import sync_index
    from sveta.ingest.sources import open_source

    start = time.perf_counter()
    run = SyncRun()
    for name, kind, location in registered_sources(catalog):
        try:
            source = open_source(kind, location, settings=settings, name=name, client=client, log=log)
            run.sources.append(source.ingest(catalog).as_dict())
        except SvetaError as exc:
            run.failed.append({"source": name, "error": exc.message, "hint": exc.hint or ""})
            log(f"{name}: {exc.message}")
    run.index = sync_index(catalog, settings).as_dict()
    run.tagged = tag_untagged(catalog, settings)
    run.seconds = round(time.perf_counter() - start, 2)
    return run


def tag_untagged(catalog: CatalogStore, settings: Settings) -> int:
    """Photo attributes for products with a cached photo and none yet (new since the model tagged the catalog)."""
    from sveta.catalog.attributes import products_with_image_attributes
    from sveta.learn.labels import examples_from_catalog
    from sveta.learn.store import has_model, load_model
    from sveta.learn.tagging import tag_products

    if not has_model(settings):
        return 0
    tagged = products_with_image_attributes(catalog)
    todo = [e for e in examples_from_catalog(catalog) if e.key not in tagged]
    return tag_products(catalog, load_model(settings), todo, settings) if todo else 0


def sync_every(
    catalog: CatalogStore,
    settings: Settings,
    every_s: float,
    stop: threading.Event,
    on_run: Callable[[SyncRun | None, Exception | None], None],
) -> None:
    """Sync, then wait ``every_s`` (or until ``stop``), again and again; an error is reported, never fatal."""
    while not stop.is_set():
        try:
            on_run(sync_once(catalog, settings, log=lambda _m: None), None)
        except Exception as exc:  # a background loop must outlive one bad pass (disk full, a model being retrained)
            on_run(None, exc)
        stop.wait(every_s)
