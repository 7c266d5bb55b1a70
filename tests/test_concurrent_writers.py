"""Several writers on one catalog at once, on SQLite and PostgreSQL: no lock error reaches a user, no write is lost."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sveta.api import create_app
from sveta.catalog.attributes import StoredAttribute, replace_image_attributes
from sveta.catalog.keyword_search import keyword_search
from sveta.catalog.models import Attribute, Product, Source
from sveta.catalog.records import ProductRecord
from sveta.catalog.store import BUSY_TIMEOUT_S, CatalogStore, open_catalog
from sveta.errors import CatalogError
from sveta.ingest.pipeline import run_ingest
from sveta.settings import Settings
from tests.conftest import reset_postgres
from tests.writers_harness import Plan, run


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    postgres: str = request.getfixturevalue("postgres_url")
    reset_postgres(postgres)
    return postgres


def _scenario(plan: Plan, url: str, home: Path) -> None:
    report = run(plan, url, home)
    print(json.dumps(report.as_dict(), indent=1))  # the numbers, with -s
    assert report.lock_errors == [] and report.other_errors == [], report.as_dict()["details"]
    assert report.lost == [], report.lost
    assert report.committed + len(report.refused) == report.attempted
    feeds = plan.cli + 1 + plan.api_threads * plan.api_feeds
    assert report.products == feeds * plan.rows + plan.races  # each feed ingested by someone, each product once
    registrations = plan.api_threads * (plan.cli + 1 + plan.races + plan.api_feeds)
    assert report.committed >= registrations + plan.taggers * plan.tag_rounds


def test_writers_at_once_lose_nothing_and_show_no_lock_error(url: str, tmp_path: Path, myntra: Path) -> None:
    """A `sveta ingest` process, a tagging process and the API's process: two threads writing through the API
    (registering the CLI's source and, at the same moment, the same names as one another; crawling their own), their
    crawls, and the sync pass, all on one catalog. The slow test below has four ingests and two taggers."""
    _scenario(Plan(), url, tmp_path)


@pytest.mark.slow
def test_many_writers_with_bigger_feeds(url: str, tmp_path: Path, myntra: Path) -> None:
    plan = Plan(cli=4, api_threads=3, api_feeds=2, rows=200, races=6, taggers=2, tag_rounds=4, timeout_s=300)
    _scenario(plan, url, tmp_path)


def test_migrations_of_a_new_catalog_opened_at_once_run_once(url: str) -> None:
    """Four engines open a new catalog together: one migrates, the others find it done."""
    assert _at_once(*[lambda: open_catalog(url).engine.dispose()] * 4) == []
    catalog = open_catalog(url)
    assert catalog.ensure_source("s", "csv", "/x") == catalog.ensure_source("s", "csv", "/x")
    catalog.engine.dispose()


def _at_once(*jobs: Callable[[], object]) -> list[BaseException]:
    """Run the jobs in threads that start together; the errors they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def go(job: Callable[[], object]) -> None:
        start.wait(30)
        try:
            job()
        except BaseException as exc:  # collected: the test shows which
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_one_name_registered_by_many_at_once_is_one_source(url: str) -> None:
    """PostgreSQL refuses all but the first insert of the name; their retries find its row (before: 503s)."""
    catalog = open_catalog(url)
    answers: list[tuple[int, bool]] = []
    errors = _at_once(*[lambda: answers.append(catalog.register_source("same", "csv", "/same"))] * 6)
    assert errors == [] and len(answers) == 6
    assert len({source_id for source_id, _ in answers}) == 1 and sum(created for _, created in answers) == 1
    catalog.engine.dispose()


def _records(word: str, n: int) -> Iterator[ProductRecord]:
    for i in range(n):
        yield ProductRecord(external_id=str(i), title=f"{word} cotton shirt {i}", product_type="Shirts", price=10.0)


def test_two_taggers_and_a_changed_ingest_at_once_keep_tags_and_keyword_documents_true(url: str) -> None:
    """Two tagging jobs rewrite the same products' photo attributes while an ingest rewrites the products: each
    product ends with one tag (a last round's), and its keyword document has its new title and that tag
    (before, on PostgreSQL: duplicate keys in product_keywords, a failed tagging run)."""
    catalog = open_catalog(url)
    run_ingest(catalog, name="shop", kind="test", location="mem", records=_records("plain", 60))
    with catalog.session() as s:
        ids = list(s.scalars(select(Product.id)))

    def tag(t: int) -> None:
        for r in range(3):
            tags = [StoredAttribute(pid, "pattern", f"tagger{t}x{r}", "image", None, 0.9, "test") for pid in ids]
            replace_image_attributes(catalog, ids, tags)

    def ingest() -> None:
        run_ingest(catalog, name="shop", kind="test", location="mem", records=_records("zebra", 60))

    assert _at_once(lambda: tag(0), lambda: tag(1), ingest) == []
    with catalog.session() as s:
        tags = s.execute(select(Attribute.product_id, Attribute.value).where(Attribute.origin == "image")).all()
    final = dict(tags)
    assert len(tags) == 60 and set(final) == set(ids) and set(final.values()) <= {"tagger0x2", "tagger1x2"}
    assert {h.product_id for h in keyword_search(catalog, "zebra", limit=100)} == set(ids)
    for value in {"tagger0x2", "tagger1x2"}:
        found = {h.product_id for h in keyword_search(catalog, value, limit=100)}
        assert found == {pid for pid, v in final.items() if v == value}
    catalog.engine.dispose()


def test_a_crawl_refused_because_another_process_ingests_the_source_is_a_409(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", api_open_writes=True, sync_every="0")
    feed = tmp_path / "feed.csv"
    feed.write_text("id,productDisplayName\n1,Blue shirt\n", encoding="utf-8")
    with TestClient(create_app(settings)) as client:
        source = client.post("/api/sources", json={"kind": "csv", "location": str(feed), "name": "feed"}).json()
        catalog = open_catalog(settings.catalog_url)
        catalog.start_run(source["id"])  # this process (alive) ingests it
        answer = client.post(f"/api/sources/{source['id']}/crawl")
        catalog.engine.dispose()
    assert answer.status_code == 409, answer.text
    assert "another ingest of this source is running" in answer.json()["error"]["message"]


@pytest.mark.slow
def test_processes_opening_a_new_catalog_at_once_migrate_it_once(url: str) -> None:
    """Three processes open a new catalog at the same moment: SQLite's BEGIN IMMEDIATE or PostgreSQL's advisory
    lock lets one migrate; the others wait, then find it done (before: "table sources already exists")."""
    start_at = time.time() + 2.0  # after every process has imported sveta
    code = (
        "import sys, time; from sveta.catalog.store import open_catalog; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); open_catalog(sys.argv[1])"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, url, str(start_at)], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    catalog = open_catalog(url)
    assert catalog.count_products() == 0
    catalog.engine.dispose()


# -- SQLite's lock, from the outside ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Iterator[tuple[CatalogStore, Path]]:
    path = tmp_path / "catalog.db"
    catalog = open_catalog(f"sqlite:///{path}", busy_timeout_s=0.3)
    catalog.retries.base_s = 0.05
    yield catalog, path
    catalog.engine.dispose()


@pytest.fixture
def locker(sqlite_catalog: tuple[CatalogStore, Path]) -> Iterator[sqlite3.Connection]:
    """Another process's connection, in autocommit mode so that its BEGIN and COMMIT are its own."""
    conn = sqlite3.connect(sqlite_catalog[1], isolation_level=None, check_same_thread=False)
    yield conn
    conn.close()


def _hold_write_lock(conn: sqlite3.Connection, seconds: float) -> threading.Thread:
    conn.execute("BEGIN IMMEDIATE")
    name = f"other-{time.monotonic_ns()}"
    conn.execute("INSERT INTO sources (name, kind, location, created_at) VALUES (?, 'csv', '/o', '2026-01-01')", [name])

    def release() -> None:
        time.sleep(seconds)
        conn.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_write_waits_for_another_writers_lock_then_retries(
    sqlite_catalog: tuple[CatalogStore, Path], locker: sqlite3.Connection
) -> None:
    """The lock is held past the busy timeout (0.3 s) once: the write is retried and lands, once."""
    catalog = sqlite_catalog[0]
    released = _hold_write_lock(locker, 0.5)
    source_id = catalog.ensure_source("mine", "csv", "/m")
    released.join()
    assert catalog.retries.taken >= 1
    with catalog.session() as s:
        assert s.scalar(select(func.count(Source.id))) == 2 and s.get(Source, source_id).name == "mine"  # type: ignore[union-attr]


def test_a_lock_held_past_every_retry_is_a_catalog_error_with_a_hint(
    sqlite_catalog: tuple[CatalogStore, Path], locker: sqlite3.Connection
) -> None:
    catalog = sqlite_catalog[0]
    catalog.retries.attempts = 2
    released = _hold_write_lock(locker, 0.8)
    try:
        with pytest.raises(CatalogError, match="stayed busy") as caught:
            catalog.ensure_source("mine", "csv", "/m")
    finally:
        released.join()
    assert "SVETA_DB_BUSY_TIMEOUT_S" in (caught.value.hint or "") and "0.3 s" in (caught.value.hint or "")
    assert catalog.ensure_source("mine", "csv", "/m") > 0  # and nothing is stuck afterwards


def test_a_deferred_read_then_write_fails_where_a_write_transaction_waits(
    sqlite_catalog: tuple[CatalogStore, Path], locker: sqlite3.Connection
) -> None:
    """Why writes BEGIN IMMEDIATE: a deferred transaction that read first cannot wait for the lock (SQLite
    answers its upgrade with "database is locked" at once, busy timeout or not)."""
    catalog = sqlite_catalog[0]
    catalog.retries.attempts = 1  # no retry: this is about the first try
    with catalog.session() as s:
        s.scalar(select(func.count(Source.id)))  # the read that starts the deferred transaction's snapshot
        released = _hold_write_lock(locker, 0.2)
        s.add(Source(name="deferred", kind="csv", location="/d"))
        with pytest.raises(Exception, match="locked") as caught:
            s.flush()
        s.rollback()
    released.join()
    assert "database is locked" in str(caught.value)
    released = _hold_write_lock(locker, 0.2)  # the same write as a write transaction: waits 0.2 s, then lands
    assert catalog.ensure_source("deferred", "csv", "/d") > 0
    released.join()


def test_the_busy_timeout_default_is_the_settings_default() -> None:
    assert Settings(_env_file=None).db_busy_timeout_s == BUSY_TIMEOUT_S
