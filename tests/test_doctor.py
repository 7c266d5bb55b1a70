"""`sveta doctor`: an empty home, a consistent real index, an index of another embedder, an unreachable Postgres."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ops.doctor import Check, all_ok, run_checks
from sveta.ops.doctor.catalog import redact_url
from sveta.settings import Settings
from tests.test_sync import _feed  # a styles.csv of real rows with images/ linked beside it

PG_URL = "postgresql+psycopg://u:secret@127.0.0.1:1/db"


def _settings(home: Path, **extra: Any) -> Settings:
    # the colour embedder needs no model file: a real index in well under a second
    return Settings(_env_file=None, data_dir=home, embedder="colour", **extra)


def _ingest(home: Path, feed: Path) -> None:
    catalog = open_catalog(_settings(home).catalog_url)
    reader = FeedReader(feed, images_dir=feed.parent / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    catalog.engine.dispose()


@pytest.fixture(scope="module")
def indexed_home(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home with 20 real products and an index of their photos (copy it before changing it)."""
    root = tmp_path_factory.mktemp("doctor")
    home = root / "data"
    _ingest(home, _feed(myntra, root / "feed", 0, 20))
    catalog = open_catalog(_settings(home).catalog_url)
    assert sync_index(catalog, _settings(home)).count == 20
    catalog.engine.dispose()
    return home


def _copy(home: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(home, tmp_path / "data", symlinks=True))


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_fresh_home_has_a_catalog_but_no_index(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    open_catalog(settings.catalog_url).engine.dispose()
    checks = _by_name(run_checks(settings))
    assert checks["data home"].ok and checks["catalog"].ok and checks["catalog schema"].ok
    assert "0 products" in checks["catalog"].detail
    assert checks["index"].ok is False and checks["index"].fix == "build it: sveta index build"
    assert checks["index embedder"].ok is None and checks["trained model"].ok is None
    assert checks["embedder"].ok and "colour" in checks["embedder"].detail
    assert not all_ok(list(checks.values()))


def test_a_missing_home_is_reported_and_not_created(tmp_path: Path) -> None:
    checks = _by_name(run_checks(_settings(tmp_path / "nowhere")))
    assert checks["data home"].ok is False and checks["catalog"].ok is False
    assert "sveta ingest" in checks["catalog"].fix and checks["catalog schema"].ok is None
    assert not (tmp_path / "nowhere").exists()


def test_a_real_index_is_consistent(indexed_home: Path) -> None:
    checks = run_checks(_settings(indexed_home))
    by_name = _by_name(checks)
    assert by_name["index"].ok and "20 vectors" in by_name["index"].detail
    assert by_name["index embedder"].ok and by_name["index embedder"].detail.startswith("colour (")
    assert by_name["index freshness"].ok and "all 20" in by_name["index freshness"].detail
    assert by_name["catalog"].detail.endswith("20 products; photos: 20 cached")
    assert all_ok(checks), [c for c in checks if c.ok is False]


def test_an_index_of_another_embedder_fails_with_a_fix(indexed_home: Path, tmp_path: Path) -> None:
    home = _copy(indexed_home, tmp_path)
    (config_path,) = (home / "index").glob("v*/config.json")
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps(config | {"embedder": "effnet-lite0"}))
    checks = run_checks(_settings(home))
    wrong = _by_name(checks)["index embedder"]
    assert wrong.ok is False and wrong.required and "effnet-lite0" in wrong.detail
    assert "sveta index build --rebuild" in wrong.fix
    assert _by_name(checks)["index freshness"].ok is None and not all_ok(checks)


def test_another_configured_embedder_and_new_products_warn(indexed_home: Path, myntra: Path, tmp_path: Path) -> None:
    home = _copy(indexed_home, tmp_path)
    _ingest(home, _feed(myntra, tmp_path / "feed", 0, 25))  # 5 new products, photos not fetched yet
    checks = run_checks(_settings(home).model_copy(update={"embedder": "effnet-lite0"}))
    by_name = _by_name(checks)
    assert by_name["index embedder"].status == "warn" and "unset SVETA_EMBEDDER" in by_name["index embedder"].fix
    stale = by_name["index freshness"]
    assert stale.status == "warn" and "5 photos not fetched" in stale.detail
    assert stale.fix.startswith("sveta index update")
    assert all_ok(checks)  # warnings only


def test_an_unreachable_postgres_fails_without_printing_the_password(tmp_path: Path) -> None:
    checks = _by_name(run_checks(_settings(tmp_path / "data", database_url=PG_URL)))
    catalog = checks["catalog"]
    assert catalog.ok is False and catalog.detail.startswith("postgresql+psycopg://u:***@127.0.0.1:1/db")
    assert "pip install 'sveta[postgres]'" in catalog.fix and "postgresql+psycopg://USER:PASSWORD@HOST" in catalog.fix
    assert checks["catalog schema"].ok is None
    assert not any("secret" in c.detail + c.fix for c in checks.values())
    assert redact_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"


def test_cli_table_json_and_exit_codes(indexed_home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    _common.set_settings(_settings(indexed_home))
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["ok"] is True and {"name", "ok", "detail", "fix", "status"} <= set(payload["checks"][0])
    assert "index embedder" in result.output and "OK" in result.output

    _common.set_settings(_settings(tmp_path / "data", database_url=PG_URL))
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1 and "secret" not in result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False
    assert [c["status"] for c in payload["checks"] if c["name"] == "catalog"] == ["FAIL"]


def test_a_home_a_restore_left_half_filled_fails_the_data_home_check(tmp_path: Path) -> None:
    from sveta.ops.doctor.catalog import RESTORE_MARKER, check_data_home

    home = tmp_path / "data"
    home.mkdir()
    assert check_data_home(Settings(_env_file=None, data_dir=home)).ok is True
    (home / RESTORE_MARKER).write_text("")
    check = check_data_home(Settings(_env_file=None, data_dir=home))
    assert check.ok is False and "did not finish" in check.detail and "sveta restore" in check.fix
