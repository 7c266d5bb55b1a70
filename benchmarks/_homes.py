"""Data homes the benchmarks share: the first n Myntra rows ingested and indexed, kept for the next run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def indexed_home(settings: Any, home: Path, shared: Path, n: int) -> dict[str, Any]:
    """The first n rows of ``shared``'s styles.csv ingested and indexed under ``home``, unless n vectors are there."""
    from sveta.catalog.store import open_catalog
    from sveta.index.catalog_index import index_config, sync_index
    from sveta.ingest.feeds import FeedReader
    from sveta.ingest.pipeline import run_ingest

    config = index_config(settings)
    if config is not None and config.count == n:
        return {"reused": str(home), "embedder": config.embedder}
    started = time.perf_counter()
    feed = home / "feed" / "styles.csv"
    feed.parent.mkdir(parents=True, exist_ok=True)
    lines = (shared / "styles.csv").read_text(encoding="utf-8").splitlines()
    feed.write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=shared / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    report = sync_index(catalog, settings, rebuild=True)
    catalog.engine.dispose()
    seconds = round(time.perf_counter() - started, 1)
    return {"built": str(home), "vectors": report.count, "embedder": report.embedder, "seconds": seconds}
