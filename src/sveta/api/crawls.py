"""Crawls started from the API: the ingest pipeline `sveta ingest` uses, run in a background thread per source."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sveta.api.errors import ApiError
from sveta.catalog.models import Source
from sveta.catalog.store import CatalogStore, IngestRunning
from sveta.ingest.pipeline import IngestReport
from sveta.ingest.sources import open_source
from sveta.settings import Settings

log = logging.getLogger("sveta.api.crawls")
START_TIMEOUT_S = 60.0  # how long a request waits for the crawl run to be opened (robots, DNS come first)


@dataclass
class CrawlOptions:
    """What a feed's crawl may add to its source's location (as `sveta ingest csv --images --map` do)."""

    images: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)


class _Announcing(CatalogStore):
    """The app's catalog (same engine) that reports the id of the crawl run the pipeline opens."""

    def __init__(self, catalog: CatalogStore, on_start: Callable[[int], None]) -> None:
        super().__init__(catalog.engine, keyword_index=catalog.keyword_index, retries=catalog.retries)
        self._on_start = on_start

    def start_run(self, source_id: int) -> int:
        run_id = super().start_run(source_id)
        self._on_start(run_id)
        return run_id


@dataclass
class _Start:
    """Hand-over between the request and the crawl thread: the run id, or the error that came before it."""

    ready: threading.Event = field(default_factory=threading.Event)
    run_id: int | None = None
    error: BaseException | None = None


class CrawlJobs:
    """Runs at most one crawl per source in this process; each in its own daemon thread."""

    def __init__(self, settings: Settings, catalog: Callable[[], CatalogStore]) -> None:
        self.settings, self._catalog = settings, catalog
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def running(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads.values())

    def start(self, source: Source, options: CrawlOptions | None = None) -> int:
        """Start crawling ``source``; returns the crawl run's id once the pipeline has opened it."""
        start = _Start()
        store = _Announcing(self._catalog(), lambda run_id: _announce(start, run_id))
        with self._lock:
            current = self._threads.get(source.id)
            if current is not None and current.is_alive():
                raise ApiError(409, f"a crawl of {source.name} is already running", "wait for it: GET /api/crawl-runs")
            thread = threading.Thread(
                target=self._run, args=(store, source, options or CrawlOptions(), start), daemon=True
            )
            thread.name = f"sveta-crawl-{source.id}"
            self._threads[source.id] = thread
            thread.start()
        if not start.ready.wait(START_TIMEOUT_S):
            raise ApiError(504, f"the crawl of {source.name} did not start in {START_TIMEOUT_S:.0f} s", None)
        if isinstance(start.error, IngestRunning):  # a CLI ingest or the sync has it: a conflict, not an outage
            raise ApiError(409, start.error.message, start.error.hint)
        if start.error is not None:
            raise start.error
        assert start.run_id is not None
        return start.run_id

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running crawls (tests, shutdown)."""
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _run(self, store: CatalogStore, source: Source, options: CrawlOptions, start: _Start) -> None:
        try:
            report = ingest_source(store, source, self.settings, options)
            log.info("crawl of %s: %s", source.name, report.as_dict())
        except BaseException as exc:  # the run records it; the request sees it only if the run never opened
            if not start.ready.is_set():
                start.error = exc
            log.warning("crawl of %s failed: %s", source.name, exc)
        finally:
            start.ready.set()


def _announce(start: _Start, run_id: int) -> None:
    start.run_id = run_id
    start.ready.set()


def ingest_source(catalog: CatalogStore, source: Source, settings: Settings, options: CrawlOptions) -> IngestReport:
    """One source into the catalog, as `sveta ingest shopify|csv|jsonl|folder` and `sveta sync` would."""
    reader = open_source(
        source.kind,
        source.location,
        settings=settings,
        name=source.name,
        images=Path(options.images) if options.images else None,
        mapping=options.mapping,
        log=log.info,
    )
    return reader.ingest(catalog)
