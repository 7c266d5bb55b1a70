"""The Shopify crawler against a real local HTTP server serving the real products.json fixture."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from sveta.catalog.models import Product, Variant
from sveta.catalog.store import CatalogStore
from sveta.errors import BlockedURLError, ConfigError, SourceError
from sveta.ingest.pipeline import IngestReport
from sveta.ingest.shopify import _retry_after, ingest_shopify, normalize_base_url
from sveta.ingest.shopify_records import product_record
from sveta.settings import Settings
from tests.shopify_server import ShopifyStore, fixture_file, fixture_products, make_products, serve

N = 12  # products in the test store: the 5 real ones and 7 derived copies
LIMIT = 5  # products per page: pages of 5, 5, 2, then the empty page that ends the listing

pytestmark = pytest.mark.skipif(fixture_file() is None, reason="the shared Shopify fixture is not here")


class Sleeps(list[float]):
    """A sleep that records what it was asked and returns at once, and the clock it moves: only sleeping takes time,
    so the waits asked for do not depend on how fast this machine stores a page."""

    now = 0.0

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "allowed_private_hosts": ["127.0.0.1"],
        "crawl_delay_s": 0.05,
        "crawl_page_limit": LIMIT,
        "crawl_backoff_s": 0.01,
        "crawl_max_retries": 2,
        "contact": "mailto:crawler-ops@example.org",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def store() -> ShopifyStore:
    return ShopifyStore(make_products(N))


@pytest.fixture
def base(store: ShopifyStore) -> Iterator[str]:
    with serve(store) as url:
        yield url


# `catalog` is conftest's: every crawl test runs on SQLite and on a real PostgreSQL server.


def crawl(
    catalog: CatalogStore, base: str, settings: Settings, sleep: Sleeps | None = None, logs: list[str] | None = None
) -> IngestReport:
    sleep = sleep if sleep is not None else Sleeps()
    log = logs.append if logs is not None else lambda _m: None
    clock = sleep.clock if isinstance(sleep, Sleeps) else time.monotonic  # real sleeps go with the real clock
    return ingest_shopify(catalog, base, settings=settings, sleep=sleep, clock=clock, log=log)


def product_rows(catalog: CatalogStore) -> dict[str, tuple[Any, ...]]:
    with catalog.session() as s:
        columns = (Product.external_id, Product.updated_at, Product.fingerprint, Product.available)
        rows = s.execute(select(*columns))
        return {r[0]: tuple(r[1:]) for r in rows}


def variant_count(catalog: CatalogStore) -> int:
    with catalog.session() as s:
        return int(s.scalar(select(func.count(Variant.id))) or 0)


def last_run(catalog: CatalogStore) -> Any:
    return catalog.runs(limit=1)[0]


# -- conversion of one product --------------------------------------------------------------------


def test_real_fixture_product_becomes_a_full_record() -> None:
    raw = fixture_products()[0]
    record = product_record(raw, "https://lovethelabel.example")
    assert record.external_id == "8211365363774" and record.handle == "lenny-jacket-in-indigo"
    assert record.title == "Lenny Jacket in Indigo" and record.brand == "Love the Label"
    assert record.description == "Love the label"  # body_html "<p>Love the label</p>" stripped
    assert record.product_type == "Shop All;Clothing/Outerwear" and record.tags == ["New Arrivals"]
    assert record.url == "https://lovethelabel.example/products/lenny-jacket-in-indigo"
    assert record.currency is None and record.available is True and record.raw is raw
    assert record.updated_at == datetime(2026, 8, 13, 5, 29, 41, tzinfo=UTC)
    assert [(v.size, v.options, v.price, v.compare_at_price) for v in record.variants] == [
        (s, {"Size": s}, 275.0, 275.0) for s in ("XS", "S", "M", "L")
    ]
    assert record.variants[0].sku == "207574" and record.variants[0].external_id == "43187059261502"
    first = record.images[0]
    assert (first.position, first.width, first.height) == (1, 1080, 1646)
    assert first.url.startswith("https://cdn.shopify.com/") and first.variant_ids == [
        v.external_id for v in record.variants
    ]


def test_older_and_odd_product_shapes_are_tolerated() -> None:
    raw = {
        "id": 7,
        "title": "Robe",
        "handle": "robe",
        "tags": "Robe, Été ,, soie",
        "body_html": "<p>Une robe&nbsp;légère</p><ul><li>soie</li><li>fait <b>main</b></li></ul><script>x()</script>",
        "options": [{"name": "Taille"}, {"name": "Couleur"}],
        "variants": [
            {
                "id": 1,
                "option1": "38",
                "option2": "Rouge",
                "price": "1,049.50",
                "compare_at_price": None,
                "available": False,
                "sku": "",
            },
            {"id": 2, "option1": "40", "option2": "Noir", "price": "99", "available": True},
        ],
        "images": [
            {"src": "//cdn.example/a.jpg", "variant_ids": [2]},
            {"src": None},
            {"src": "file:///etc/passwd"},
        ],  # a store must not point the cache at local files
    }
    record = product_record(raw, "https://boutique.example")
    assert record.tags == ["Robe", "Été", "soie"]
    assert record.description == "Une robe légère\nsoie\nfait main"
    assert [(v.size, v.colour, v.price, v.compare_at_price, v.sku) for v in record.variants] == [
        ("38", "Rouge", 1049.5, None, None),
        ("40", "Noir", 99.0, None, None),
    ]
    assert record.available is True  # one variant is
    images = [(i.url, i.variant_ids, i.position) for i in record.images]
    assert images == [("https://cdn.example/a.jpg", ["2"], 1)]
    default = product_record(
        {
            "id": 8,
            "title": "T",
            "handle": "t",
            "options": [{"name": "Title"}],
            "variants": [{"id": 3, "option1": "Default Title", "available": False}],
        },
        "https://x",
    )
    assert default.variants[0].options == {} and default.available is False


@pytest.mark.parametrize(
    "given",
    [
        "store.example",
        "https://store.example/",
        "https://Store.Example/collections/x",
        "store.example/products.json?page=2",
    ],
)
def test_store_address_is_normalised_to_scheme_and_host(given: str) -> None:
    assert normalize_base_url(given) == "https://store.example"


@pytest.mark.parametrize("given", ["", "https://", "store.example:port"])
def test_bad_store_address_is_a_config_error(given: str) -> None:
    with pytest.raises(ConfigError, match="not a store address"):
        normalize_base_url(given)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "2"})) == 2.0
    assert 25 < (_retry_after(httpx.Response(429, headers={"Retry-After": later})) or 0) <= 30
    assert _retry_after(httpx.Response(429)) is None
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None


# -- crawling a store -----------------------------------------------------------------------------


def test_every_product_is_ingested_with_variants_prices_and_images(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    report = crawl(catalog, base, make_settings(tmp_path))
    assert (report.status, report.new, report.pages) == ("ok", N, 4)
    assert catalog.count_products() == N
    assert variant_count(catalog) == sum(len(p["variants"]) for p in store.products)
    for raw in store.products:
        product = catalog.find_product(str(raw["id"]))
        assert product is not None and product.title == raw["title"]
        assert [v.external_id for v in product.variants] == [str(v["id"]) for v in raw["variants"]]
        assert all(
            isinstance(v.price, float) and v.price == float(w["price"])
            for v, w in zip(product.variants, raw["variants"], strict=True)
        )
        assert product.price_min == min(float(v["price"]) for v in raw["variants"])
        assert [i.url for i in product.images] == [i["src"] for i in raw["images"]]
        expected = [[str(v) for v in i["variant_ids"]] for i in raw["images"]]
        assert [i.variant_ids for i in product.images] == expected
        assert product.url == f"{base}/products/{raw['handle']}" and product.available
    assert store.paths() == ["/robots.txt"] + ["/products.json"] * 4
    assert [h.query for h in store.hits[1:]] == [{"limit": str(LIMIT), "page": str(p)} for p in (1, 2, 3, 4)]


def test_second_run_reports_nothing_new_and_writes_nothing(catalog: CatalogStore, base: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    crawl(catalog, base, settings)
    before = product_rows(catalog)
    report = crawl(catalog, base, settings)
    assert (report.new, report.changed, report.unchanged, report.gone) == (0, 0, N, 0)
    assert product_rows(catalog) == before  # not one row's updated_at moved


def test_changed_updated_at_counts_as_one_changed(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    crawl(catalog, base, settings)
    touched = store.products[7]
    touched.update(updated_at="2026-09-01T10:00:00-04:00", title="Faye Knit Dress, restocked")
    report = crawl(catalog, base, settings)
    assert (report.new, report.changed, report.unchanged) == (0, 1, N - 1)
    product = catalog.find_product(str(touched["id"]))
    assert product is not None and product.title == "Faye Knit Dress, restocked"


def test_removed_product_is_marked_gone_not_deleted(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    crawl(catalog, base, settings)
    removed = store.products.pop(3)
    report = crawl(catalog, base, settings)
    assert (report.gone, report.unchanged, report.status) == (1, N - 1, "ok")
    product = catalog.find_product(str(removed["id"]))
    assert product is not None and product.available is False and product.gone_at is not None
    assert catalog.count_products() == N


def test_429_with_retry_after_is_waited_out(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.enqueue("/products.json", 429, body={"errors": "Too Many Requests"}, headers={"Retry-After": "2"}, page=2)
    sleeps, logs = Sleeps(), list[str]()
    report = crawl(catalog, base, make_settings(tmp_path), sleeps, logs)
    assert report.status == "ok" and catalog.count_products() == N
    assert max(sleeps) >= 2.0
    assert [h.query["page"] for h in store.hits[1:]] == ["1", "2", "2", "3", "4"]
    assert any("429" in line and "2.0 s" in line for line in logs)


def test_5xx_is_retried_with_backoff(catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path) -> None:
    store.enqueue("/products.json", 500, body="oops", content_type="text/plain", page=1)
    store.enqueue("/products.json", 502, body="oops", content_type="text/plain", page=3)
    report = crawl(catalog, base, make_settings(tmp_path, crawl_delay_s=0.0, crawl_backoff_s=0.5))
    assert report.status == "ok" and report.new == N
    assert store.paths().count("/products.json") == 6


def test_5xx_gives_up_after_the_retries_with_a_clear_error(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.enqueue("/products.json", 503, body="down", content_type="text/plain", page=2, times=None)
    sleeps = Sleeps()
    settings = make_settings(tmp_path, crawl_max_retries=3, crawl_backoff_s=1.0, crawl_max_backoff_s=3.0)
    with pytest.raises(SourceError, match="HTTP 503; gave up after 4 attempts"):
        crawl(catalog, base, settings, sleeps)
    assert [h.query["page"] for h in store.hits[1:]] == ["1", "2", "2", "2", "2"]
    assert [s for s in sleeps if s >= 1.0] == [1.0, 2.0, 3.0]  # doubling, capped at crawl_max_backoff_s
    run = last_run(catalog)
    assert run.status == "failed" and run.gone == 0 and "gave up" in run.errors[0]
    assert catalog.count_products() == LIMIT  # page 1 was read and kept; nothing was marked gone


def test_network_errors_are_retried_then_reported(catalog: CatalogStore, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(SourceError, match=r"network error.*gave up after 3 attempts"):
        crawl(catalog, f"http://127.0.0.1:{port}", make_settings(tmp_path), sleeps)
    assert len([s for s in sleeps if s > 0]) >= 2


def test_html_answer_is_a_clear_error_and_writes_nothing(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.enqueue("/products.json", 200, body="<html><body>Welcome</body></html>", content_type="text/html", times=None)
    with pytest.raises(SourceError, match=r"does not expose /products.json \(it answered text/html\)") as err:
        crawl(catalog, base, make_settings(tmp_path))
    assert "myshopify.com" in (err.value.hint or "")
    assert catalog.count_products() == 0 and last_run(catalog).status == "failed"


def test_json_without_a_products_list_is_a_clear_error(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.enqueue("/products.json", 200, body={"product": {}}, times=None)
    with pytest.raises(SourceError, match="JSON without a 'products' list"):
        crawl(catalog, base, make_settings(tmp_path))
    assert catalog.count_products() == 0


def test_robots_disallow_stops_before_any_product_request(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.robots = "User-agent: *\nDisallow: /products.json\n"
    with pytest.raises(SourceError, match=r"robots\.txt .* disallows /products\.json"):
        crawl(catalog, base, make_settings(tmp_path))
    assert store.paths() == ["/robots.txt"] and catalog.count_products() == 0


def test_robots_wildcards_and_other_agents_groups(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.robots = "User-agent: Googlebot\nDisallow: /\n\nUser-agent: sveta\nDisallow: /*.json$\n"
    assert crawl(catalog, base, make_settings(tmp_path)).new == N  # the query-string form is allowed
    store.robots = "User-agent: *\nDisallow: /*.json\n"
    with pytest.raises(SourceError, match=r"robots\.txt"):
        crawl(catalog, base, make_settings(tmp_path))


def test_robots_crawl_delay_larger_than_the_setting_is_obeyed(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.robots = "User-agent: *\nCrawl-delay: 3\nDisallow: /admin\n"
    sleeps, logs = Sleeps(), list[str]()
    crawl(catalog, base, make_settings(tmp_path), sleeps, logs)
    assert len(sleeps) == 4 and min(sleeps) > 2.9  # before each of the 4 pages
    assert any("robots.txt asks for 3 s" in line for line in logs)


@pytest.mark.parametrize(
    ("status", "words"), [(403, "refuses crawlers"), (401, "refuses crawlers"), (404, "no products.json at")]
)
def test_refusals_stop_at_once_with_a_clear_error(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path, status: int, words: str
) -> None:
    store.enqueue("/products.json", status, body="<h1>no</h1>", content_type="text/html", times=None)
    with pytest.raises(SourceError, match=words):
        crawl(catalog, base, make_settings(tmp_path))
    assert store.paths().count("/products.json") == 1  # no retries
    assert catalog.count_products() == 0


def test_page_cap_continues_through_collections_without_duplicates(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    # Pages of 2; past 6 items (page 4) the store answers Shopify's 400, in every product listing.
    store.cap_items = 6
    ids = [p["id"] for p in store.products]
    store.collections = {
        "jackets": ids[0:4],
        "skirts": ids[2:6],
        "dresses": ids[6:10],
        "tops": ids[8:12],
        "everything": ids,
    }
    logs: list[str] = []
    report = crawl(catalog, base, make_settings(tmp_path, crawl_page_limit=2), logs=logs)
    assert (report.status, report.new, report.duplicates) == ("ok", N, 0)
    assert catalog.count_products() == N
    assert "/collections/dresses/products.json" in store.paths()
    summary = "products.json stops at 25,000 items; continued through 5 collections, 6 more products"
    assert summary in report.notes and summary in logs
    assert any("'everything' also stops" in note for note in report.notes)
    assert last_run(catalog).notes == report.notes


def test_a_read_through_collections_marks_nothing_gone(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    """Products in no collection are invisible past the cap: they must not be taken for gone."""
    crawl(catalog, base, make_settings(tmp_path))
    store.cap_items = 4
    ids = [p["id"] for p in store.products]
    store.collections = {"a": ids[4:8], "b": ids[8:10]}  # the last two products are in no collection
    report = crawl(catalog, base, make_settings(tmp_path, crawl_page_limit=2))
    assert (report.status, report.gone, report.unchanged) == ("ok", 0, 10)
    assert any("not read completely" in note for note in report.notes)
    assert catalog.count_products() == N
    with catalog.session() as s:
        assert s.query(Product).filter(Product.available.is_(False)).count() == 0


def test_store_ignoring_the_page_parameter_is_an_error_not_a_loop(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    store.enqueue("/products.json", body={"products": store.products[:LIMIT]}, times=None)
    with pytest.raises(SourceError, match="ignores the page parameter"):
        crawl(catalog, base, make_settings(tmp_path))


def test_user_agent_carries_the_contact(catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path) -> None:
    crawl(catalog, base, make_settings(tmp_path))
    agents = {h.headers.get("User-Agent", "") for h in store.hits}
    assert len(agents) == 1 and "mailto:crawler-ops@example.org" in agents.pop()


def test_requests_are_spaced_by_the_crawl_delay(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    del store.products[2:]  # robots.txt, page 1, empty page 2: three requests
    settings = make_settings(tmp_path, crawl_delay_s=0.2, crawl_page_limit=250)
    crawl(catalog, base, settings, sleep=time.sleep)  # type: ignore[arg-type]
    times = [h.at for h in store.hits]
    assert len(times) == 3
    assert all(later - earlier >= 0.2 for earlier, later in pairwise(times))


def test_private_address_is_refused_without_allow_list(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    with pytest.raises(BlockedURLError, match="SVETA_ALLOWED_PRIVATE_HOSTS"):
        crawl(catalog, base, make_settings(tmp_path, allowed_private_hosts=[]))
    assert store.hits == [] and catalog.count_products() == 0


def test_crawl_run_row_records_the_counts(
    catalog: CatalogStore, base: str, store: ShopifyStore, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    crawl(catalog, base, settings)
    store.products.pop(0)
    store.products[0]["updated_at"] = "2026-09-02T00:00:00Z"
    crawl(catalog, base, settings)
    run = catalog.runs(base.split("://")[1], limit=1)[0]
    assert (run.status, run.pages, run.new, run.changed, run.unchanged, run.gone) == ("ok", 4, 0, 1, N - 2, 1)
    assert run.finished_at is not None and run.source.kind == "shopify" and run.source.location == base


def test_cli_ingest_shopify_json(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from sveta import cli

    monkeypatch.setenv("SVETA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SVETA_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
    monkeypatch.setenv("SVETA_CRAWL_DELAY_S", "0.01")
    monkeypatch.setenv("SVETA_CRAWL_PAGE_LIMIT", str(LIMIT))
    cli._common._state.clear()
    try:
        result = CliRunner().invoke(cli.app, ["ingest", "shopify", base, "--json"])
    finally:
        cli._common._state.clear()
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: counts[k] for k in ("pages", "new", "changed", "unchanged", "gone")} == {
        "pages": 4,
        "new": N,
        "changed": 0,
        "unchanged": 0,
        "gone": 0,
    }
