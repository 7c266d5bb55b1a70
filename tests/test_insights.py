"""Search insights through the real app: a scripted session of searches and clicks counted by `sveta report searches`,
on SQLite and PostgreSQL; nothing about the shopper stored; retention, pruning, the page's query string, failures."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.api.recording import page_of, surface_of
from sveta.catalog import insights
from sveta.catalog.insights import normalise, prune, prune_due
from sveta.catalog.models import ClickEvent, SearchEvent, utcnow
from sveta.catalog.stats import catalog_crosstab, catalog_stats, plot_crosstab
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.errors import CatalogError, InputError
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ops.insights_report import parse_since
from sveta.settings import Settings
from tests.conftest import reset_postgres

N = 40  # Myntra products: T-shirts, shorts, skirts, shoes; indexed with the colour embedder in a fraction of a second
SHOP = "https://shop.example"
ADDRESS = "203.0.113.77"  # the shopper's address, as a proxy would forward it: it must be stored nowhere
TEXTS = ["nike t-shirt", "Nike  T-SHIRT", "navy blue shorts", "zzqx wibble", "ZZQX   wibble", "white skirts"]


@dataclass
class Home:
    settings: Settings
    catalog: CatalogStore
    client: TestClient
    photos: Path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def home(request: pytest.FixtureRequest, myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url")
        reset_postgres(database_url)
    root = tmp_path_factory.mktemp("insights")
    feed = root / "feed" / "styles.csv"
    feed.parent.mkdir()
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()
    feed.write_text("\n".join(lines[: N + 1]) + "\n", encoding="utf-8")
    settings = Settings(
        _env_file=None, data_dir=root / "data", database_url=database_url, embedder="colour", sync_every="0"
    )
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    assert sync_index(catalog, settings).count == N
    with TestClient(create_app(settings)) as client:
        yield Home(settings, catalog, client, myntra / "images")
    catalog.engine.dispose()


@pytest.fixture
def fresh(home: Home) -> Home:
    """The home with no search or click recorded yet."""
    home.catalog.write(lambda s: (s.execute(delete(ClickEvent)), s.execute(delete(SearchEvent))))
    return home


def _widget(surface: str, path: str = "/products/demo-tee?utm_source=mail&email=a@b.example#reviews") -> dict[str, str]:
    return {"X-Sveta-Surface": surface, "X-Sveta-Page": SHOP + path, "X-Forwarded-For": ADDRESS}


@dataclass
class Script:
    """What the session did, to count what the report must say."""

    searches: list[dict[str, Any]] = field(default_factory=list)  # kind, surface, query, results, id
    clicks: list[dict[str, Any]] = field(default_factory=list)  # search (id or None), surface

    def searched(self, response: Any, kind: str, surface: str, query: str | None, results_key: str) -> int:
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body["search_id"], int)
        self.searches.append(
            {
                "kind": kind,
                "surface": surface,
                "query": query,
                "results": len(body[results_key]),
                "id": body["search_id"],
            }
        )
        return int(body["search_id"])

    def click(self, client: TestClient, search_id: int | None, surface: str, product_id: int = 3) -> dict[str, Any]:
        body = {
            "search_id": search_id,
            "product_id": product_id,
            "position": 2,
            "surface": surface,
            "page": SHOP + "/c?x=1",
        }
        response = client.post("/api/events/click", json=body, headers={"X-Forwarded-For": ADDRESS})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        known = search_id if any(s["id"] == search_id for s in self.searches) else None
        assert answer["recorded"] is True and answer["search_id"] == known
        self.clicks.append({"search": known, "surface": surface})
        return answer


def _session(home: Home) -> Script:
    """Text searches (repeated in other cases and spacing, two finding nothing), photo searches, similar products
    and a completion from the widget, and clicks on some of them."""
    c, script = home.client, Script()
    ids = [
        script.searched(
            c.get("/api/search/text", params={"q": q}, headers={"X-Forwarded-For": ADDRESS}),
            "text",
            "api",
            q,
            "matches",
        )
        for q in TEXTS
    ]
    web = {"X-Sveta-Surface": "web", "X-Sveta-Page": "http://localhost:8000/?q=secret"}
    ids.append(
        script.searched(
            c.get("/api/search/text", params={"q": "nike t-shirt"}, headers=web),
            "text",
            "web",
            "nike t-shirt",
            "matches",
        )
    )
    photo = {"file": ("shot.jpg", (home.photos / "10000.jpg").read_bytes(), "image/jpeg")}
    photo_id = script.searched(
        c.post("/api/search/photo", files=photo, headers=_widget("widget-photo")),
        "photo",
        "widget-photo",
        None,
        "matches",
    )
    script.searched(c.post("/api/search/photo", files=photo), "photo", "api", None, "matches")
    similar = [
        script.searched(
            c.get(f"/api/products/{ref}/similar", headers=_widget("widget-similar")),
            "similar",
            "widget-similar",
            ref,
            "matches",
        )
        for ref in ("3", "5", "3")
    ]
    script.searched(
        c.get("/api/complete/3", headers=_widget("widget-complete")), "complete", "widget-complete", "3", "items"
    )
    script.click(c, ids[0], "api")
    script.click(c, ids[0], "api", product_id=7)  # two clicks on one search
    script.click(c, ids[6], "web")
    script.click(c, photo_id, "widget-photo")
    script.click(c, similar[1], "widget-similar")
    script.click(c, 999_999, "widget-similar")  # a search that is not recorded: kept without it
    return script


def _expected(script: Script) -> dict[str, Any]:
    """The report's counts, made from the script alone."""
    clicks_of = Counter(click["search"] for click in script.clicks if click["search"] is not None)
    texts = [s for s in script.searches if s["kind"] == "text"]
    by_query: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in texts:
        by_query[" ".join(s["query"].split()).casefold()].append(s)
    top = [
        {"query": q, "searches": len(ss), "avg_results": round(sum(s["results"] for s in ss) / len(ss), 2),
         "clicks": sum(clicks_of[s["id"]] for s in ss)}
        for q, ss in by_query.items()
    ]  # fmt: skip
    surfaces = {s["surface"] for s in script.searches} | {c["surface"] for c in script.clicks}
    by_surface = []
    for surface in surfaces:
        mine = [s for s in script.searches if s["surface"] == surface]
        clicked = sum(1 for s in mine if clicks_of[s["id"]])
        by_surface.append({
            "surface": surface, "searches": len(mine),
            "clicks": sum(1 for c in script.clicks if c["surface"] == surface),
            "ctr": round(clicked / len(mine), 4) if mine else 0.0,
        })  # fmt: skip
    return {
        "searches": len(script.searches),
        "clicks": len(script.clicks),
        "by_kind": dict(Counter(s["kind"] for s in script.searches)),
        "zero_result_searches": sum(1 for s in script.searches if s["results"] == 0),
        "clicked_searches": len(clicks_of),
        "top_queries": sorted(top, key=lambda q: (-q["searches"], q["query"])),
        "zero_result_queries": sorted(
            ({"query": q, "searches": sum(1 for s in ss if not s["results"])} for q, ss in by_query.items()
             if any(not s["results"] for s in ss)), key=lambda q: (-q["searches"], q["query"])),
        "no_click_queries": sorted(
            ({"query": q, "searches": sum(1 for s in ss if s["results"])} for q, ss in by_query.items()
             if any(s["results"] for s in ss) and not any(clicks_of[s["id"]] for s in ss if s["results"])),
            key=lambda q: (-q["searches"], q["query"])),
        "by_surface": sorted(by_surface, key=lambda r: (-r["searches"], -r["clicks"], r["surface"])),
    }  # fmt: skip


def _report_cli(home: Home, *args: str) -> Any:
    _common.set_settings(home.settings)
    _common._state["catalog"] = home.catalog
    try:
        return CliRunner().invoke(app, ["report", "searches", *args])
    finally:
        _common._state.clear()


def test_a_scripted_session_is_counted_by_the_report(fresh: Home) -> None:
    start = utcnow()
    script = _session(fresh)
    assert any(s["query"] == "zzqx wibble" and s["results"] == 0 for s in script.searches), "the nonsense found things"
    result = _report_cli(fresh, "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = _expected(script)
    for key, value in expected.items():
        got = report[key]
        if key in ("zero_result_queries", "no_click_queries"):
            got = [{"query": q["query"], "searches": q["searches"]} for q in got]
        assert got == value, f"{key}: {got} != {value}"
    hours = report["busiest_hours"]
    assert [h["hour"] for h in hours] == list(range(24)) and sum(h["searches"] for h in hours) == len(script.searches)
    assert {h["hour"] for h in hours if h["searches"]} <= {start.hour, utcnow().hour}
    assert set(report["window"]) == {"since", "until"} and report["avg_latency_ms"] > 0
    api = fresh.client.get("/api/insights", params={"since": "1h"}).json()
    assert {k: api[k] for k in expected} == {k: report[k] for k in expected}
    table = _report_cli(fresh, "--since", "1h", "--top", "3")
    assert table.exit_code == 0 and "nike t-shirt" in table.output and "zzqx wibble" in table.output


def test_nothing_about_the_shopper_is_stored(fresh: Home) -> None:
    """No address (the client's or a forwarded one), no page query string or fragment, in any column of any row."""
    _session(fresh)
    with fresh.catalog.session() as s:
        rows = [*s.execute(select(SearchEvent.__table__)), *s.execute(select(ClickEvent.__table__))]
        pages = set(s.scalars(select(SearchEvent.page))) | set(s.scalars(select(ClickEvent.page)))
    assert len(rows) == 19
    for row in rows:
        for value in row:
            text = json.dumps(value, default=str)
            assert ADDRESS not in text and "testclient" not in text
            assert "utm_source" not in text and "email" not in text and "secret" not in text and "#" not in text
    assert pages == {None, SHOP + "/products/demo-tee", SHOP + "/c", "http://localhost:8000/"}
    assert {c.name for c in SearchEvent.__table__.columns} == {
        "id", "at", "kind", "surface", "query", "understood", "results", "latency_ms", "page"
    }  # fmt: skip
    assert {c.name for c in ClickEvent.__table__.columns} == {
        "id", "at", "search_id", "product_id", "surface", "position", "page"
    }  # fmt: skip


def test_insights_days_0_records_nothing(fresh: Home) -> None:
    off = fresh.settings.model_copy(update={"insights_days": 0})
    with TestClient(create_app(off)) as client:
        answer = client.get("/api/search/text", params={"q": "nike t-shirt"}, headers={"X-Sveta-Surface": "web"})
        click = client.post("/api/events/click", json={"product_id": 3, "position": 1, "surface": "web"})
        similar = client.get("/api/products/3/similar", headers=_widget("widget-similar"))
    assert answer.status_code == 200 and answer.json()["search_id"] is None and answer.json()["matches"]
    assert similar.json()["search_id"] is None
    assert click.status_code == 200 and click.json() == {"recorded": False, "click_id": None, "search_id": None}
    with fresh.catalog.session() as s:
        assert s.scalar(select(func.count(SearchEvent.id))) == 0 and s.scalar(select(func.count(ClickEvent.id))) == 0


def test_old_records_are_pruned_at_most_hourly(fresh: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    old, now = utcnow() - timedelta(days=91), utcnow()
    fresh.catalog.write(
        lambda s: s.add_all([
            SearchEvent(at=old, kind="text", surface="api", query="old", results=1, latency_ms=1.0),
            SearchEvent(at=now - timedelta(days=89), kind="text", surface="api", query="kept", results=1),
            ClickEvent(at=old, search_id=None, product_id=3, surface="web", position=1),
        ])
    )  # fmt: skip
    monkeypatch.setattr(insights, "_pruned", {})
    prune_due(fresh.catalog, 90)
    with fresh.catalog.session() as s:
        assert list(s.scalars(select(SearchEvent.query))) == ["kept"]
        assert s.scalar(select(func.count(ClickEvent.id))) == 0
    fresh.catalog.write(lambda s: s.add(SearchEvent(at=old, kind="text", surface="api", query="old", results=1)))
    prune_due(fresh.catalog, 90)  # pruned a moment ago: not again within the hour
    answer = fresh.client.get("/api/search/text", params={"q": "nike t-shirt"})  # recording does not prune either
    assert answer.json()["search_id"] is not None
    with fresh.catalog.session() as s:
        assert s.scalar(select(func.count()).where(SearchEvent.query == "old")) == 1
    assert prune(fresh.catalog, 90) == 1 and prune(fresh.catalog, 0, now=utcnow() + timedelta(seconds=1)) == 2


def test_a_failing_record_never_fails_the_search(
    fresh: Home, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = fresh.client.app.state.sveta.catalog()  # type: ignore[attr-defined]

    def locked(work: Any) -> Any:
        raise CatalogError("the catalog database stayed busy with other writers", "try again")

    monkeypatch.setattr(store, "write", locked)
    with caplog.at_level(logging.WARNING, logger="sveta.insights"):
        answer = fresh.client.get("/api/search/text", params={"q": "nike t-shirt"})
        click = fresh.client.post("/api/events/click", json={"search_id": 1, "product_id": 3, "position": 1})
    assert answer.status_code == 200 and answer.json()["matches"] and answer.json()["search_id"] is None
    assert click.status_code == 200 and click.json()["recorded"] is False
    assert "search not recorded" in caplog.text and "click not recorded" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        {"position": 1},  # no product
        {"product_id": 3, "position": 0},  # positions start at 1
        {"product_id": -1, "position": 1},
        {"product_id": 3, "position": 1, "search_id": "first"},
        {"product_id": 3, "position": 1, "ip": ADDRESS},  # nothing else is taken
    ],
)
def test_a_bad_click_is_a_422(home: Home, body: dict[str, Any]) -> None:
    response = home.client.post("/api/events/click", json=body)
    assert response.status_code == 422 and set(response.json()["error"]) == {"code", "message", "hint"}


def test_the_window_and_who_may_read_the_report(home: Home) -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30) and parse_since("12h", now).hour == 0
    assert parse_since("4w", now) == now - timedelta(weeks=4) and parse_since(" 7D ", now).day == 29
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    for bad in ("", "7", "7y", "-3d", "yesterday", "2026-13-01", "2027-01-01"):
        with pytest.raises(InputError):
            parse_since(bad, now)
    result = _report_cli(home, "--since", "a week")
    assert result.exit_code == InputError.exit_code and "'a week' is neither a duration nor a date" in result.output
    assert "Traceback" not in result.output
    bad = home.client.get("/api/insights", params={"since": "7y"})
    assert bad.status_code == 422 and "30m, 12h, 7d, 4w" in bad.json()["error"]["hint"]
    keys = {"api_read_key": SecretStr("public-widget-key"), "api_key": SecretStr("owner-key-0123456789")}
    keyed = home.settings.model_copy(update=keys)
    with TestClient(create_app(keyed)) as client:
        assert client.get("/api/insights", headers={"X-API-Key": "public-widget-key"}).status_code == 401
        assert client.get("/api/insights", headers={"X-API-Key": "owner-key-0123456789"}).status_code == 200
        click = {"product_id": 3, "position": 1, "surface": "widget-photo"}
        assert (
            client.post("/api/events/click", json=click, headers={"X-API-Key": "public-widget-key"}).status_code == 200
        )


def test_pages_surfaces_and_queries_are_normalised() -> None:
    assert page_of("https://user:pw@Shop.example:8443/a/b?q=1#x") == "https://shop.example:8443/a/b"
    assert page_of("https://shop.example") == "https://shop.example/" and page_of("/p?x=1") == "/p"
    assert page_of("javascript:alert(1)") is None and page_of("http://[::1") is None and page_of(" ") is None
    assert len(page_of("https://shop.example/" + "a" * 5000) or "") == 512
    assert surface_of(" Widget-Photo ") == "widget-photo" and surface_of("admin") == "api" and surface_of(None) == "api"
    assert normalise("  Red \t DRESS ") == "red dress" and normalise("   ") is None


def test_the_catalog_crosstab(home: Home, tmp_path: Path) -> None:
    crosstab = home.client.get("/api/stats/crosstab").json()
    stats = catalog_stats(home.catalog)
    assert crosstab == catalog_crosstab(home.catalog)
    for key in ("gender_by_category", "colour_by_category"):
        assert {c: sum(row.values()) for c, row in crosstab[key].items()} == stats["by_category"]
    assert crosstab["gender_by_category"]["Shorts"] == {"Men": 5}  # the first seed's finding: men's only
    written = plot_crosstab(crosstab, tmp_path)
    assert [p.name for p in written] == ["gender_by_category.png", "colour_by_category.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


# -- the web page in a browser --------------------------------------------------------------------


@contextmanager
def _served(settings: Settings) -> Iterator[str]:
    """The app on a real uvicorn server on a free local port, in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="insights-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.slow
def test_the_web_page_records_its_searches_and_clicks_and_shows_insights(fresh: Home) -> None:
    pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
    from playwright.sync_api import sync_playwright

    from tests.test_web import CHROMIUM_ARGS

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("the browser test needs Debian's chromium: apt-get install chromium")
    if fresh.settings.database_url is not None:
        pytest.skip("the page is the same over PostgreSQL (the API's recording is tested on both)")
    with _served(fresh.settings) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_default_timeout(30_000)
            page.goto(url + "/#/search?q=nike%20t-shirt")
            page.locator(".search-results .card").nth(1).click()
            page.wait_for_selector("[data-row=similar] .card")
            with fresh.catalog.session() as s:
                searches = s.execute(select(SearchEvent.kind, SearchEvent.surface, SearchEvent.page)).all()
            assert ("text", "web", url + "/") in searches and ("similar", "web", url + "/") in searches
            deadline = time.monotonic() + 10  # the click goes out as the page changes (keepalive)
            while time.monotonic() < deadline and not _web_clicks(fresh.catalog):
                time.sleep(0.05)
            assert _web_clicks(fresh.catalog) == [(1, 2)]  # the text search's id, the second card
            page.goto(url + "/#/insights?since=1h")
            page.wait_for_selector("[data-table=top-queries] tbody tr")
            page.wait_for_selector(".crosstab td.heat")
            assert "nike t-shirt" in page.locator("[data-table=top-queries]").inner_text()
            assert page.locator(".hour").count() == 24 and page.locator(".crosstab").count() == 2
            assert "web" in page.locator("[data-table=surfaces]").inner_text()
            assert not errors, errors
        finally:
            browser.close()


def _web_clicks(catalog: CatalogStore) -> list[tuple[int | None, int | None]]:
    with catalog.session() as s:
        first = s.scalar(select(func.min(SearchEvent.id)))
        rows = s.execute(select(ClickEvent.search_id, ClickEvent.position).where(ClickEvent.surface == "web")).all()
    return [(None if search is None else search - (first or 0) + 1, position) for search, position in rows]


def test_a_text_search_that_only_found_look_alikes_is_a_zero_result_search() -> None:
    from sveta.api.recording import word_matches
    from sveta.catalog.queries import ProductCard
    from sveta.engines.merch import Note
    from sveta.engines.search import Match

    card = ProductCard(1, "1", "s", "Red Dress", None, "Dress", "Red", "Women", None, None, True, None, None)
    pinned = Note(3, "pin", "pinned to 1 by rule 3 (qqqq)")
    look_alikes = [Match(card, 0.1, 1, ["looks like: 0.09"]), Match(card, 0.1, 1, ["looks like: 0.08"])]
    assert word_matches(look_alikes) == 0  # what a trained text map shows for "qqqq"
    assert word_matches([*look_alikes, Match(card, 0.1, 1, [pinned.says], pinned)]) == 0  # a pin is no answer
    found = Match(card, 0.2, 1, ["title: red dress", "colour: Red (seller)", "looks like: 0.12"])
    assert word_matches([found, *look_alikes]) == 1
