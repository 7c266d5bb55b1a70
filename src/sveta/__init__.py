"""sveta: a self-hosted fashion catalog engine; the public Python API, pinned by ``__all__`` and loaded lazily."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sveta._version import __version__
from sveta.errors import BlockedURLError, CatalogError, ConfigError, InputError, SourceError, SvetaError

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore, open_catalog
    from sveta.embed.base import get_embedder
    from sveta.engines.complete import Completer
    from sveta.engines.look import Looker
    from sveta.engines.search import Searcher
    from sveta.index.base import Filter
    from sveta.index.catalog_index import sync_index
    from sveta.ingest.pipeline import run_ingest
    from sveta.ingest.sources import open_source
    from sveta.learn.catalog import train_catalog
    from sveta.learn.tagging import tag_photos
    from sveta.settings import Settings

# Name -> the module that defines it. Importing one of these pulls in numpy, SQLAlchemy or the models, so they are
# imported on first use: `import sveta` stays fast and needs no extra.
_LAZY = {
    "Settings": "sveta.settings",
    "open_catalog": "sveta.catalog.store",
    "CatalogStore": "sveta.catalog.store",
    "open_source": "sveta.ingest.sources",
    "run_ingest": "sveta.ingest.pipeline",
    "get_embedder": "sveta.embed.base",
    "sync_index": "sveta.index.catalog_index",
    "Filter": "sveta.index.base",
    "train_catalog": "sveta.learn.catalog",
    "tag_photos": "sveta.learn.tagging",
    "Searcher": "sveta.engines.search",
    "Completer": "sveta.engines.complete",
    "Looker": "sveta.engines.look",
}

__all__ = [
    "BlockedURLError",
    "CatalogError",
    "CatalogStore",
    "Completer",
    "ConfigError",
    "Filter",
    "InputError",
    "Looker",
    "Searcher",
    "Settings",
    "SourceError",
    "SvetaError",
    "__version__",
    "get_embedder",
    "open_catalog",
    "open_source",
    "run_ingest",
    "sync_index",
    "tag_photos",
    "train_catalog",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sveta' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
