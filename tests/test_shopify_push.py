"""`sveta shopify push` against a fake Admin API over real HTTP: dry run, throttling, a killed run, bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from sveta.catalog.attributes import StoredAttribute, replace_image_attributes
from sveta.catalog.export_rows import export_rows
from sveta.catalog.models import ShopifyPush
from sveta.catalog.pushes import Pushed, pushed_values, record_pushed
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.errors import ConfigError, SourceError
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ingest.shopify import ingest_shopify
from sveta.ops.export import export_attributes
from sveta.ops.shopify_push import PushReport, push_attributes
from sveta.settings import Settings
from tests.conftest import reset_postgres
from tests.shopify_admin_server import AdminStore, serve_admin
from tests.shopify_server import ShopifyStore, fixture_file, make_products, serve

TOKEN = "shpat_fake0123456789abcdef"  # what the fake store accepts; never to be seen in any output
FEED_ROWS = 12  # Myntra products; the store has the first FEED_ON_STORE of them under their ids as handles
FEED_ON_STORE = 9
ROOT = Path(__file__).resolve().parents[1]
METAFIELD = re.compile(r"\(product\.metafields\.(sveta\.[a-z0-9_-]+)\)$")

pytestmark = pytest.mark.skipif(fixture_file() is None, reason="the shared Shopify fixture is not here")


@dataclass
class Shop:
    url: str
    admin: AdminStore
    products: dict[str, str]  # gid -> handle: the store's products before each test
    template: Path  # the data home built once; each test works on a copy
    planted: str  # the gid of the feed product given photo guesses: a contradicting colour, a sure and an unsure
    guessed_colour: str  # its photo colour guess, sure but against the seller's


@dataclass
class Case:
    shop: Shop
    settings: Settings
    catalog: CatalogStore

    def push(self, *, apply: bool, **kwargs: Any) -> PushReport:
        token = SecretStr(kwargs.pop("token", TOKEN))
        return push_attributes(self.catalog, self.settings, kwargs.pop("url", self.shop.url), token, apply=apply,
                               **kwargs)  # fmt: skip


def _settings(home: Path) -> Settings:
    return Settings(_env_file=None, data_dir=home, allowed_private_hosts=["127.0.0.1"], crawl_delay_s=0.0)


def _ingest_feed(catalog: CatalogStore, myntra: Path, folder: Path) -> list[str]:
    """The first FEED_ROWS rows of the shared styles.csv as a feed; returns their ids."""
    with (myntra / "styles.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(FEED_ROWS), reader, strict=False)]
    folder.mkdir(parents=True)
    path = folder / "styles.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    feed = FeedReader(path)
    run_ingest(catalog, name="myntra", kind="csv", location=str(path), records=feed.records(), state=feed.state)
    return [row["id"] for row in rows]


@pytest.fixture(scope="module")
def shop(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One fake store serving both its storefront (ingested here, so its products carry Shopify ids) and its
    Admin API; the catalog also holds Myntra feed products, most of them on the store under their ids."""
    root = tmp_path_factory.mktemp("push")
    storefront = make_products(5)
    gids = {f"gid://shopify/Product/{p['id']}": p["handle"] for p in storefront}
    admin = AdminStore(dict(gids), TOKEN, storefront=ShopifyStore(storefront))
    with serve_admin(admin) as url:
        settings = _settings(root / "data")
        catalog = open_catalog(settings.catalog_url)
        ingest_shopify(catalog, url, settings=settings, log=lambda _m: None, sleep=lambda _s: None)
        ids = _ingest_feed(catalog, Path(myntra), root / "feed")
        gids |= {f"gid://shopify/Product/{900_000 + i}": ids[i] for i in range(FEED_ON_STORE)}
        feed_row = next(r for r in export_rows(catalog, source="myntra") if r.external_id == ids[0])
        seller = next(a.value for a in feed_row.attributes if a.name == "colour")
        guess = "Green" if seller == "Red" else "Red"
        replace_image_attributes(catalog, [feed_row.product_id], [  # what `sveta tag` stores
            StoredAttribute(feed_row.product_id, "colour", guess, "image", "[]", 0.99, "tuned:catalog@test"),
            StoredAttribute(feed_row.product_id, "pattern", "Striped", "image", "[]", 0.95, "tuned:catalog@test"),
            StoredAttribute(feed_row.product_id, "sleeve_length", "Short Sleeves", "image", "[]", 0.5, "tuned:x"),
        ])  # fmt: skip
        catalog.engine.dispose()
        yield Shop(url, admin, gids, root / "data", "gid://shopify/Product/900000", guess)


@pytest.fixture
def case(shop: Shop, tmp_path: Path) -> Iterator[Case]:
    home = tmp_path / "data"
    shutil.copytree(shop.template, home)
    shop.admin.reset(shop.products)
    settings = _settings(home)
    catalog = open_catalog(settings.catalog_url)
    yield Case(shop, settings, catalog)
    catalog.engine.dispose()


def _expected(case: Case, tmp_path: Path) -> dict[str, dict[str, str]]:
    """What `sveta export attributes --format shopify` writes, per store gid: the push must write the same."""
    out = tmp_path / "shop.csv"
    export_attributes(case.catalog, case.settings, out, fmt="shopify", audit=False)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_handle = {h: g for g, h in case.shop.products.items()}
    out_map: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["Handle"] in by_handle:
            cells = {m.group(1): v for c, v in row.items() if (m := METAFIELD.search(c)) and v}
            out_map[by_handle[row["Handle"]]] = cells
    return out_map


def _journal(case: Case) -> dict[tuple[int, str], str]:
    with case.catalog.session() as s:
        return {(pid, key): value for pid, key, value in s.execute(select(ShopifyPush.product_id, ShopifyPush.key,
                                                                           ShopifyPush.value))}  # fmt: skip


def test_dry_run_says_what_would_change_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    expected = _expected(case, tmp_path)
    admin = case.shop.admin
    gid, values = next(iter(expected.items()))
    same, other = sorted(values)[:2]
    admin.metafields[gid] = {same: values[same], other: "Something else"}  # one already there, one different
    report = case.push(apply=False)
    total = sum(len(v) for v in expected.values())
    assert report.metafields == {"create": total - 2, "update": 1, "unchanged": 1}
    assert report.written == 0 and admin.answers["set"] == 0 and not admin.writes and _journal(case) == {}
    assert admin.metafields[gid] == {same: values[same], other: "Something else"}
    feed = {r.external_id for r in export_rows(case.catalog, source="myntra")}
    assert set(report.gone) == feed - set(case.shop.products.values()) and len(report.gone) == FEED_ROWS - FEED_ON_STORE
    assert report.products == len(expected) + len(report.gone) and report.errors == []


def test_apply_through_throttling_writes_each_metafield_once(case: Case, tmp_path: Path) -> None:
    expected = _expected(case, tmp_path)
    admin = case.shop.admin
    admin.fail = {4: (429, {"Retry-After": "0.05"}), 9: (502, {})}  # a flood answer and a passing outage
    admin.drain_on_set = {2}  # another client of the app spent the bucket: that call is answered THROTTLED
    report = case.push(apply=True)
    assert admin.answers["throttled"] >= 1 and admin.answers["429"] == 1 and admin.answers["502"] == 1
    assert report.retries == {"throttled": admin.answers["throttled"], "http_429": 1, "server_error": 1}
    assert report.throttled_waits > report.retries["http_429"]  # it also paced itself by the bucket it read
    assert {gid: admin.metafields.get(gid, {}) for gid in expected} == expected  # the export's values, all
    total = sum(len(v) for v in expected.values())
    assert report.written == total == len(admin.writes) and set(admin.writes.values()) == {1}
    assert max(len(v) for v in expected.values()) <= 25 and admin.answers["set"] >= total / 25
    assert len(_journal(case)) == total and report.errors == []
    assert report.requests == admin.requests and report.cost["actual"] > 0
    planted = admin.metafields[case.shop.planted]
    assert planted["sveta.pattern"] == "Striped"  # a sure photo guess
    assert planted.get("sveta.sleeve") != "Short Sleeves"  # an unsure one is not pushed
    assert planted["sveta.colour"] != case.shop.guessed_colour  # the seller's colour is never replaced by a guess
    gid, values = next(iter(expected.items()))
    key = next(iter(values))
    admin.metafields[gid][key] = "Merchant's own"  # edited in the shop after sveta wrote it
    again = case.push(apply=True)
    assert again.metafields == {"create": 0, "update": 0, "unchanged": total} and again.written == 0
    assert again.from_journal == len(expected) and again.gone == report.gone  # only those not there are read again
    assert set(admin.writes.values()) == {1} and admin.metafields[gid][key] == "Merchant's own"


def test_a_killed_push_resumes_and_writes_every_metafield_once(case: Case, tmp_path: Path) -> None:
    expected = _expected(case, tmp_path)
    admin = case.shop.admin
    admin.hold_after_set = 2  # the store applies the second call, then the client is killed before the answer
    env = {**os.environ, "SVETA_DATA_DIR": str(case.settings.data_dir), "SVETA_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
           "SHOP_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    command = [sys.executable, "-m", "sveta", "shopify", "push", case.shop.url, "--token-env", "SHOP_TOKEN", "--apply"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert admin.holding.wait(60), "the push never reached its second metafieldsSet call"
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=30)
    finally:
        admin.release.set()
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL and TOKEN not in out + err
    journalled = len(_journal(case))
    assert journalled == 25  # the first call's answer was recorded; the second's never arrived
    total = sum(len(v) for v in expected.values())
    report = case.push(apply=True)
    assert report.metafields["unchanged"] == 50 and report.written == total - 50
    assert {gid: admin.metafields.get(gid, {}) for gid in expected} == expected
    assert len(admin.writes) == total and set(admin.writes.values()) == {1}  # every metafield written once
    assert len(_journal(case)) == total  # the second call's values, found on the store, are journalled too


def test_a_product_deleted_on_the_store_is_reported_not_fatal(case: Case, tmp_path: Path) -> None:
    expected = _expected(case, tmp_path)
    admin = case.shop.admin
    before, during = list(expected)[:2]  # one deleted before the push, one between its read and its write
    admin.delete(before)
    admin.delete_on_set = {1: during}
    report = case.push(apply=True)
    handles = case.shop.products
    assert {handles[before], handles[during]} <= set(report.gone) and report.errors == []
    rest = {g: v for g, v in expected.items() if g not in (before, during)}
    assert {g: admin.metafields.get(g, {}) for g in rest} == rest and set(admin.writes.values()) == {1}
    assert report.written == sum(len(v) for v in rest.values()) == len(_journal(case))


def test_cli_json_report_and_the_token_stays_secret(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _cli(case, monkeypatch, case.shop.url, "--token-env", "SHOP_TOKEN", "--apply", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    keys = {"store", "apply", "products", "metafields", "written", "gone", "errors", "requests", "throttled_waits"}
    assert keys | {"from_journal", "waited_s", "cost", "retries", "seconds"} == set(report)
    assert report["apply"] is True and report["written"] == report["metafields"]["create"] > 0
    assert report["store"] == case.shop.url.split("://")[1]
    assert TOKEN not in result.output and all(t == TOKEN for t in case.shop.admin.tokens_seen)
    for path in case.settings.data_dir.rglob("*"):  # not in the catalog, the journal or any file
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_a_wrong_token_is_a_clear_error(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "shpat_wrong_or_expired")
    result = _cli(case, monkeypatch, case.shop.url, "--token-env", "SHOP_TOKEN", "--apply", token=None)
    assert result.exit_code == ConfigError.exit_code, result.output
    assert "refused the token" in result.output and "shpat_wrong_or_expired" not in result.output
    assert case.shop.admin.answers["401"] == 1 and not case.shop.admin.writes
    with pytest.raises(ConfigError, match="refused the token") as info:
        case.push(apply=True, token="shpat_wrong_or_expired")
    assert "shpat_wrong" not in repr(info.value) + str(info.value.hint)
    monkeypatch.delenv("SHOP_TOKEN")
    unset = _cli(case, monkeypatch, case.shop.url, "--token-env", "SHOP_TOKEN", token=None)
    assert unset.exit_code == ConfigError.exit_code and "SHOP_TOKEN is not set" in unset.output


class _Html(BaseHTTPRequestHandler):
    def _html(self) -> None:
        data = b"<!doctype html><html><body>Welcome to my blog</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _html

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_address_that_is_no_shopify_store_is_a_clear_error(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = _cli(case, monkeypatch, url, "--token-env", "SHOP_TOKEN")
        assert result.exit_code == SourceError.exit_code, result.output
        assert f"{url} is not a Shopify store's Admin API" in " ".join(result.output.split())
        assert TOKEN not in result.output
    finally:
        server.shutdown()
        server.server_close()
    no_admin = pytest.raises(SourceError, match="is not a Shopify store's Admin API: HTTP 501")
    with serve(ShopifyStore([])) as storefront, no_admin:  # a storefront that serves products.json, no Admin API
        case.push(apply=False, url=storefront)
    with pytest.raises(ConfigError, match="not a store address"):
        case.push(apply=False, url="ftp://shop.example")


def _cli(case: Case, monkeypatch: pytest.MonkeyPatch, *args: str, token: str | None = TOKEN) -> Any:
    monkeypatch.setenv("SVETA_DATA_DIR", str(case.settings.data_dir))
    monkeypatch.setenv("SVETA_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
    if token is not None:
        monkeypatch.setenv("SHOP_TOKEN", token)
    _common._state.clear()
    try:
        return CliRunner().invoke(app, ["shopify", "push", *args])
    finally:
        _common._state.clear()


def test_two_catalog_products_on_one_store_product_push_once(case: Case) -> None:
    products = dict(case.shop.products)
    feed_handle = products.pop(case.shop.planted)
    shared = next(iter(products))  # a store product the catalog also has from the storefront, under its id
    case.shop.admin.reset(products | {shared: feed_handle})  # ... and now the feed product's handle is its too
    report = case.push(apply=True)
    duplicate = [e for e in report.errors if e["code"] == "DUPLICATE"]
    assert [e["handle"] for e in duplicate] == [feed_handle] and case.shop.products[shared] in duplicate[0]["message"]
    assert set(case.shop.admin.writes.values()) == {1}


def test_a_changed_value_is_updated_and_its_journal_row_replaced(case: Case, tmp_path: Path) -> None:
    expected = _expected(case, tmp_path)
    admin = case.shop.admin
    gid, values = next(iter(expected.items()))
    key, other_key = sorted(values)[:2]
    product_id = next(r.product_id for r in export_rows(case.catalog) if r.handle == case.shop.products[gid])
    admin.metafields[gid] = {key: "Old value"}  # what an earlier push wrote, before sveta's value changed
    record_pushed(case.catalog, _store_name(case), [Pushed(product_id, gid, key, "Old value"),
                                                    Pushed(product_id, gid, other_key, values[other_key])])  # fmt: skip
    report = case.push(apply=True)
    assert report.metafields["update"] == 1 and admin.metafields[gid][key] == values[key]
    journal = _journal(case)
    assert journal[(product_id, key)] == values[key] and journal[(product_id, other_key)] == values[other_key]
    assert len(journal) == sum(len(v) for v in expected.values()) and set(admin.writes.values()) == {1}


def _store_name(case: Case) -> str:
    return case.shop.url.split("://", 1)[1]


def test_the_journal_on_postgresql(postgres_url: str) -> None:
    reset_postgres(postgres_url)
    catalog = open_catalog(postgres_url)
    try:
        gid = "gid://shopify/Product/1"
        rows = [Pushed(7, gid, "sveta.colour", "Navy"), Pushed(7, gid, "sveta.pattern", "Solid")]
        assert record_pushed(catalog, "a.myshopify.com", rows) == 2
        assert record_pushed(catalog, "b.myshopify.com", rows[:1]) == 1  # another store keeps its own rows
        assert record_pushed(catalog, "a.myshopify.com", [Pushed(7, gid, "sveta.colour", "Red")]) == 1
        journal = pushed_values(catalog, "a.myshopify.com")
        assert {k: p.value for k, p in journal.items()} == {(7, "sveta.colour"): "Red", (7, "sveta.pattern"): "Solid"}
        assert pushed_values(catalog, "b.myshopify.com")[(7, "sveta.colour")].value == "Navy"
    finally:
        catalog.engine.dispose()
