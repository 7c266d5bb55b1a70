"""Background sync: every registered source read again, new products embedded and indexed, old index kept live."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sveta.catalog.models import Source
from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.errors import InputError
from sveta.index.catalog_index import open_catalog_index, sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ops.sync import parse_every, sync_once
from sveta.settings import Settings

runner = CliRunner()


def _feed(myntra: Path, folder: Path, start: int, n: int) -> Path:
    """A styles.csv of n Myntra rows (from row ``start``) whose photos exist, with images/ linked beside it."""
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if (myntra / "images" / f"{r['id']}.jpg").is_file()]
    folder.mkdir(exist_ok=True)
    if not (folder / "images").exists():
        (folder / "images").symlink_to(myntra / "images")
    path = folder / "styles.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[start : start + n])
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parse_every() -> None:
    assert parse_every("6h") == 6 * 3600 and parse_every("30m") == 1800 and parse_every("1d") == 86400
    assert parse_every("90") == 90 and parse_every("1.5h") == 5400
    for bad in ("", "6x", "-1h", "0m", "soon"):
        with pytest.raises(InputError, match="not a duration"):
            parse_every(bad)


def test_sync_reads_sources_again_and_swaps_the_index(myntra: Path, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        allowed_private_hosts=["127.0.0.1"],
        crawl_max_retries=1,  # the store that is down fails fast
        crawl_backoff_s=0.01,
    )
    catalog = open_catalog(settings.catalog_url)
    feed = _feed(myntra, tmp_path / "feed", 0, 20)
    reader = FeedReader(feed, images_dir=feed.parent / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    sync_index(catalog, settings)
    live = open_catalog_index(settings, create=False)  # a reader holding the old version (as a server does)
    before = len(live)
    # a store that is down: its failure is reported, the other source is still read
    store = f"http://127.0.0.1:{_free_port()}"
    with catalog.session() as s:
        s.add(Source(name="down-store", kind="shopify", location=store))
    _feed(myntra, tmp_path / "feed", 0, 30)  # the feed gains 10 products

    run = sync_once(catalog, settings, log=lambda _m: None)

    assert [f["source"] for f in run.failed] == ["down-store"]
    (read,) = run.sources
    assert (read["new"], read["changed"], read["gone"]) == (10, 0, 0)
    assert run.index["embedded"] == 10 and run.index["count"] == before + 10
    assert len(live) == before  # the old reader still answers from its version, unchanged
    assert len(live.search(live.vectors(live.ids()[:1]), 5)[0]) == 5
    assert len(open_catalog_index(settings, create=False)) == before + 10  # a fresh open gets the new version
    again = sync_once(catalog, settings, log=lambda _m: None)
    assert again.sources[0]["new"] == 0 and again.index["embedded"] == 0
    catalog.engine.dispose()


def test_cli_sync_once_json(myntra: Path, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    _common.set_settings(settings)
    feed = _feed(myntra, tmp_path / "feed", 100, 8)
    assert runner.invoke(app, ["ingest", "csv", str(feed)]).exit_code == 0
    result = runner.invoke(app, ["sync", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    assert got["failed"] == [] and got["sources"][0]["unchanged"] == 8 and got["index"]["count"] == 8
    result = runner.invoke(app, ["sync", "--every", "soon"])
    assert result.exit_code == InputError.exit_code and "not a duration" in result.output
    with open_catalog(settings.catalog_url).session() as s:
        assert s.scalars(select(Source.kind)).all() == ["csv"]


def test_the_server_syncs_in_the_background_and_serves_the_new_index(myntra: Path, tmp_path: Path) -> None:
    import time

    from fastapi.testclient import TestClient

    from sveta.api.app import create_app

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", sync_every="1s")
    catalog = open_catalog(settings.catalog_url)
    feed = _feed(myntra, tmp_path / "feed", 200, 10)
    reader = FeedReader(feed, images_dir=feed.parent / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    sync_index(catalog, settings)
    app = create_app(settings)
    with TestClient(app) as client:  # the lifespan starts the sync thread
        assert client.get("/readyz").json()["checks"]["index"]["vectors"] == 10
        _feed(myntra, tmp_path / "feed", 200, 14)
        deadline = time.monotonic() + 120
        while "last_sync" not in app.state.sveta.cache and time.monotonic() < deadline:
            time.sleep(0.2)
        last = app.state.sveta.cache["last_sync"]
        assert last["sources"][0]["new"] == 4 and last["index"]["count"] == 14
        assert client.get("/readyz").json()["checks"]["index"]["vectors"] == 14
        newest = client.get("/api/products", params={"limit": 100}).json()
        assert newest["total"] == 14
        hits = client.get(f"/api/products/{newest['items'][-1]['product_id']}/similar", params={"k": 3}).json()
        assert len(hits["matches"]) == 3
    catalog.engine.dispose()
