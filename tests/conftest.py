"""Shared fixtures: the ../shared data, settings in a temp data home, SQLite and real Postgres catalogs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common
from sveta.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
MYNTRA = SHARED / "datasets" / "myntra-small"


@pytest.fixture(scope="session", autouse=True)
def no_weak_labels_unless_asked() -> Iterator[None]:
    """Reading photos of people with MediaPipe costs ~70 ms a photo in every training: tests that train for other
    reasons skip it; the weak-label tests and the demo test ask for it (Settings(weak_label_photos=...))."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SVETA_WEAK_LABEL_PHOTOS", "0")
        yield


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The CLI on a fresh data home (its settings and catalog state cleared before and after)."""
    monkeypatch.setenv("SVETA_DATA_DIR", str(tmp_path / "data"))
    _common._state.clear()
    yield CliRunner()
    _common._state.clear()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"the shared data is not at {SHARED}: put the shared/ folder beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def myntra(shared: Path) -> Path:
    return MYNTRA


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", allowed_private_hosts=["127.0.0.1", "localhost"], crawl_delay_s=0.0)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from tests.pg_server import postgres_server

    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        if os.environ.get("CI"):  # CI must run the Postgres cases, not skip them
            pytest.fail(f"CI=true but no PostgreSQL server could be started: {exc}")
        pytest.skip(f"no PostgreSQL server here: {exc}")


@pytest.fixture(scope="session")
def milvus_address() -> Iterator[str]:
    """HOST:PORT of a real Milvus 2.3 standalone server (tests/milvus_server.py), started once per session."""
    from tests.milvus_server import MilvusServer

    server = MilvusServer()
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        if os.environ.get("CI"):  # CI must run the Milvus server cases, not skip them
            pytest.fail(f"CI=true but no Milvus server could be started: {exc}")
        pytest.skip(f"no Milvus server here: {exc}")
    print(f"milvus-server {server.address} started in {server.started_s:.1f} s")
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CatalogStore]:
    """A fresh, migrated catalog on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        store = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
        yield store
        store.engine.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    store = open_catalog(url)
    yield store
    store.engine.dispose()


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
