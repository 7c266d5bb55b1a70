"""Sources on this machine's disk, behind the ProductSource seam: CSV / JSONL feeds and folders of photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sveta.errors import InputError
from sveta.ingest.feeds import FeedReader, read_folder
from sveta.ingest.pipeline import CrawlState, IngestReport, run_ingest
from sveta.progress import Advance

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.ingest.sources import SourceOptions


@dataclass
class FeedSource:
    """A CSV or JSONL feed: one product per row or line."""

    kind: str
    name: str
    location: str
    reader: FeedReader

    def ingest(self, catalog: CatalogStore, *, on_progress: Advance | None = None) -> IngestReport:
        return run_ingest(
            catalog,
            name=self.name,
            kind=self.kind,
            location=self.location,
            records=self.reader.rows(),
            state=self.reader.state,
            on_progress=on_progress,
        )


@dataclass
class FolderSource:
    """A folder with one sub-folder of photos per category; each photo becomes a product."""

    kind: str
    name: str
    location: str

    def ingest(self, catalog: CatalogStore, *, on_progress: Advance | None = None) -> IngestReport:
        state = CrawlState()
        records = read_folder(Path(self.location), state)  # a missing folder fails the crawl run, as it reads
        return run_ingest(
            catalog,
            name=self.name,
            kind=self.kind,
            location=self.location,
            records=records,
            state=state,
            on_progress=on_progress,
        )


def open_feed(kind: str, location: str, options: SourceOptions) -> FeedSource:
    """The feed file at ``location``; photos in ``options.images``, else in images/ beside the file."""
    path = Path(location)
    if not path.is_file():
        raise InputError(f"feed file not found: {path}", "register the source again with the feed's path")
    images = options.images or (path.parent / "images" if (path.parent / "images").is_dir() else None)
    reader = FeedReader(path, images_dir=images.resolve() if images else None, overrides=dict(options.mapping))
    return FeedSource(kind, options.name or f"{kind}:{path.parent.name}/{path.name}", location, reader)


def open_folder(kind: str, location: str, options: SourceOptions) -> FolderSource:
    """The folder of photos at ``location`` (read, and checked, when it is ingested)."""
    return FolderSource(kind, options.name or f"folder:{Path(location).name}", location)
