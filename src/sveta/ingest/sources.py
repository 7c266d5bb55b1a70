"""Sources behind one seam: ``open_source(kind, location)`` builds the reader of a store, a feed or a folder."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from sveta.errors import ConfigError
from sveta.progress import Advance

if TYPE_CHECKING:
    import httpx

    from sveta.catalog.store import CatalogStore
    from sveta.ingest.pipeline import IngestReport
    from sveta.settings import Settings


@runtime_checkable
class ProductSource(Protocol):
    """One place products come from, opened and checked; ``ingest`` reads it whole into the catalog."""

    kind: str
    name: str  # the catalog's name for the source
    location: str  # what the catalog records: a store's base URL, a feed's or a folder's path

    def ingest(self, catalog: CatalogStore, *, on_progress: Advance | None = None) -> IngestReport: ...


@dataclass(frozen=True)
class SourceOptions:
    """What opening a source may need besides its kind and location; each kind reads the fields that apply."""

    settings: Settings
    name: str | None = None  # feeds and folders (default: from the path); a store is always named by its host
    images: Path | None = None  # feeds: the folder of photos (default: images/ beside the file)
    mapping: dict[str, str] = field(default_factory=dict)  # feeds: FIELD -> COLUMN, as --map gives them
    client: httpx.Client | None = None  # stores: a shared HTTP client (default: one per crawl)
    log: Callable[[str], None] = print  # stores: the crawler's notes, as they happen


SourceFactory = Callable[[str, str, SourceOptions], ProductSource]
# Source kinds -> "module:factory"; a module is imported only when its kind is opened, so this one imports no
# reader. The order is the one error messages list the kinds in.
BUILTINS: dict[str, str] = {
    "shopify": "sveta.ingest.shopify:open_shopify",
    "csv": "sveta.ingest.files:open_feed",
    "jsonl": "sveta.ingest.files:open_feed",
    "folder": "sveta.ingest.files:open_folder",
}


def source_kinds() -> list[str]:
    """The kinds ``open_source`` knows."""
    return list(BUILTINS)


def open_source(
    kind: str,
    location: str,
    *,
    settings: Settings,
    name: str | None = None,
    images: Path | None = None,
    mapping: dict[str, str] | None = None,
    client: httpx.Client | None = None,
    log: Callable[[str], None] = print,
) -> ProductSource:
    """The source of ``kind`` at ``location`` (a store URL, a feed file, a folder), checked and ready to ingest."""
    options = SourceOptions(settings, name, images, dict(mapping or {}), client, log)
    return _factory(kind, name)(kind, location, options)


def _factory(kind: str, name: str | None) -> SourceFactory:
    path = BUILTINS.get(kind)
    if path is None:
        *rest, last = source_kinds()
        where = f"source {name}: unknown kind" if name else "unknown source kind"
        raise ConfigError(f"{where} {kind!r}", f"sources are {', '.join(rest)} or {last}")
    module, _, attr = path.partition(":")
    return cast(SourceFactory, getattr(importlib.import_module(module), attr))
