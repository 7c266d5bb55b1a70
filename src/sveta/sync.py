"""Keeping the catalog fresh: re-crawl every registered source, fetch new photos, tag them, update the index."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from sveta.catalog.models import Attribute, Source
from sveta.errors import ConfigError, InputError, SvetaError

if TYPE_CHECKING:
    import httpx

    from sveta.catalog.store import CatalogStore
    from sveta.ingest.pipeline import IngestReport
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


def sources(catalog: CatalogStore) -> list[tuple[str, str, str]]:
    """(name, kind, location) of every registered source."""
    with catalog.session() as s:
        return [(n, k, loc) for n, k, loc in s.execute(select(Source.name, Source.kind, Source.location))]


def crawl_source(
    catalog: CatalogStore,
    name: str,
    kind: str,
    location: str,
    settings: Settings,
    *,
    images: Path | None = None,
    mapping: dict[str, str] | None = None,
    client: httpx.Client | None = None,
    log: Callable[[str], None] = print,
) -> IngestReport:
    """Read one source again, as registered: a store URL, a feed file (photos in ``images``, default images/ beside
    it; columns renamed by ``mapping``), or a folder of photos."""
    from sveta.ingest.pipeline import CrawlState, run_ingest

    if kind == "shopify":
        from sveta.ingest.shopify import ingest_shopify

        return ingest_shopify(catalog, location, settings=settings, client=client, log=log)
    path = Path(location)
    if kind in ("csv", "jsonl"):
        from sveta.ingest.feeds import FeedReader

        if not path.is_file():
            raise InputError(f"feed file not found: {path}", "register the source again with the feed's path")
        images = images or (path.parent / "images" if (path.parent / "images").is_dir() else None)
        reader = FeedReader(path, images_dir=images.resolve() if images else None, overrides=dict(mapping or {}))
        return run_ingest(
            catalog, name=name, kind=kind, location=location, records=reader.records(), state=reader.state
        )
    if kind == "folder":
        from sveta.ingest.feeds import read_folder

        state = CrawlState()
        records = read_folder(path, state)
        return run_ingest(catalog, name=name, kind=kind, location=location, records=records, state=state)
    raise ConfigError(f"source {name}: unknown kind {kind!r}", "sources are shopify, csv, jsonl or folder")


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

    start = time.perf_counter()
    run = SyncRun()
    for name, kind, location in sources(catalog):
        try:
            run.sources.append(crawl_source(catalog, name, kind, location, settings, client=client, log=log).as_dict())
        except SvetaError as exc:
            run.failed.append({"source": name, "error": exc.message, "hint": exc.hint or ""})
            log(f"{name}: {exc.message}")
    run.index = sync_index(catalog, settings).as_dict()
    run.tagged = tag_untagged(catalog, settings)
    run.seconds = round(time.perf_counter() - start, 2)
    return run


def tag_untagged(catalog: CatalogStore, settings: Settings) -> int:
    """Photo attributes for products with a cached photo and none yet (new since the model tagged the catalog)."""
    from sveta.learn.catalog import has_model, load_model, tag_products
    from sveta.learn.labels import examples_from_catalog

    if not has_model(settings):
        return 0
    with catalog.session() as s:
        tagged = set(s.scalars(select(Attribute.product_id).where(Attribute.origin == "image").distinct()))
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
