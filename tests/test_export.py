"""`sveta export attributes` on a real tiny catalog: Myntra feed rows and a Shopify store served over local HTTP."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sveta.catalog.attributes import StoredAttribute, replace_image_attributes
from sveta.catalog.export_rows import export_rows
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.errors import InputError
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ingest.shopify import ingest_shopify
from sveta.ops.export import chosen_values, export_attributes, parse_since
from sveta.settings import Settings
from tests.shopify_server import ShopifyStore, fixture_file, make_products, serve

FEED_ROWS = 24  # Myntra products; with the store's 5, 29 in all
THRESHOLD = 0.8
EXTRA_TAGS = ["Sale", "colour:INDIGO"]  # the second is what sveta would add: it must not come twice
METAFIELD = re.compile(r"^[A-Z][a-z ]* \(product\.metafields\.sveta\.[a-z0-9_-]{2,64}\)$")

pytestmark = pytest.mark.skipif(fixture_file() is None, reason="the shared Shopify fixture is not here")


@dataclass
class Built:
    home: Path
    settings: Settings
    catalog: CatalogStore
    store: str  # the Shopify source's name
    shop: list[dict[str, Any]]  # the store's products.json products
    planted: int  # the feed product given photo guesses: a contradicting colour, a sure and an unsure one


def _feed(myntra: Path, folder: Path, n: int = FEED_ROWS) -> Path:
    with (myntra / "styles.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(n), reader, strict=False)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "styles.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _ingest_feed(catalog: CatalogStore, path: Path) -> None:
    reader = FeedReader(path)
    run_ingest(catalog, name="myntra", kind="csv", location=str(path), records=reader.records(), state=reader.state)


def _plant(catalog: CatalogStore, product_id: int, seller_colour: str) -> None:
    """What `sveta tag` stores: photo guesses, through the catalog's own write path."""
    colour = "Red" if seller_colour != "Red" else "Green"
    guesses = [
        StoredAttribute(product_id, "colour", colour, "image", "[]", 0.99, "tuned:catalog@test"),
        StoredAttribute(product_id, "pattern", "Striped", "image", "[]", 0.95, "tuned:catalog@test"),
        StoredAttribute(product_id, "sleeve_length", "Short Sleeves", "image", "[]", 0.5, "tuned:catalog@test"),
    ]
    replace_image_attributes(catalog, [product_id], guesses)


@pytest.fixture(scope="module")
def built(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    home = tmp_path_factory.mktemp("export")
    settings = Settings(_env_file=None, data_dir=home / "data", allowed_private_hosts=["127.0.0.1"], crawl_delay_s=0.0)
    catalog = open_catalog(settings.catalog_url)
    _ingest_feed(catalog, _feed(myntra, home / "feed"))
    shop = make_products(5)
    shop[0]["tags"] = [*shop[0]["tags"], *EXTRA_TAGS]
    with serve(ShopifyStore(shop)) as base:
        ingest_shopify(catalog, base, settings=settings, log=lambda _m: None, sleep=lambda _s: None)
    rows = export_rows(catalog, source="myntra")
    planted = rows[3]
    _plant(catalog, planted.product_id, next(a.value for a in planted.attributes if a.name == "colour"))
    yield Built(home, settings, catalog, base.split("://")[1], shop, planted.product_id)
    catalog.engine.dispose()


def _cli(built: Built, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("SVETA_DATA_DIR", str(built.settings.data_dir))
    _common._state.clear()
    try:
        return CliRunner().invoke(app, ["export", "attributes", *args])
    finally:
        _common._state.clear()


def _seller(built: Built) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for row in export_rows(built.catalog):
        for a in row.attributes:
            if a.origin == "seller":
                out.setdefault(row.product_id, {}).setdefault(a.name, a.value)
    return out


def test_shopify_csv_follows_shopifys_column_rules(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "shop.csv"
    result = _cli(built, monkeypatch, str(out), "--format", "shopify", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    with out.open(encoding="utf-8", newline="") as handle:  # Shopify wants UTF-8, a header line, commas
        header, *rows = list(csv.reader(handle))
    assert header[:3] == ["Handle", "Title", "Tags"] and summary["columns"] == header
    assert all(METAFIELD.match(h) for h in header[3:]), header
    assert {"Colour (product.metafields.sveta.colour)", "Pattern (product.metafields.sveta.pattern)"} <= set(header)
    assert all(len(r) == len(header) for r in rows)
    table = [dict(zip(header, r, strict=True)) for r in rows]
    rows_now = export_rows(built.catalog)
    assert len(table) == summary["rows"] == len(rows_now) == FEED_ROWS + len(built.shop)  # one row per product
    handles = [r["Handle"] for r in table]
    assert len(set(handles)) == len(handles) and {p["handle"] for p in built.shop} <= set(handles)
    assert summary["handles_from_source_id"] == FEED_ROWS  # the feed has no handles: its ids stand in
    by_handle = {r["Handle"]: r for r in table}
    for product in built.shop:  # every tag the shop has is kept, first and in its order
        tags = [t.strip() for t in by_handle[product["handle"]]["Tags"].split(",")]
        assert tags[: len(product["tags"])] == product["tags"]
        assert len({t.lower() for t in tags}) == len(tags)
    first = [t.strip() for t in by_handle[built.shop[0]["handle"]]["Tags"].split(",")]
    assert any(t.startswith("category:") for t in first) and "colour:indigo" not in {t.lower() for t in first[3:]}
    _values_are_sure_or_the_sellers(built, table, header, rows_now)


def _values_are_sure_or_the_sellers(built: Built, table: list[dict[str, str]], header: list[str], rows: Any) -> None:
    key = {h: re.search(r"sveta\.([^)]+)\)", h).group(1) for h in header[3:]}  # type: ignore[union-attr]
    name = {"sleeve": "sleeve_length"}
    seller = _seller(built)
    by_handle = {r["Handle"]: r for r in table}
    checked = 0
    for row in rows:
        cells = by_handle[row.handle or row.external_id]
        for h, k in key.items():
            attribute = name.get(k, k)
            if attribute in seller.get(row.product_id, {}):
                assert cells[h] == seller[row.product_id][attribute]  # never a guess over the seller's word
                checked += 1
            elif cells[h]:
                sure = {a.value for a in row.attributes if a.name == attribute and a.confidence >= THRESHOLD}
                assert cells[h] in sure
    assert checked >= FEED_ROWS * 5
    planted = next(r for r in rows if r.product_id == built.planted)
    cells = by_handle[planted.external_id]
    assert cells["Pattern (product.metafields.sveta.pattern)"] == "Striped"  # a sure photo guess is in
    assert cells.get("Sleeve (product.metafields.sveta.sleeve)") != "Short Sleeves"  # an unsure one (0.5) is not


def test_jsonl_and_csv_round_trip(built: Built, tmp_path: Path) -> None:
    jsonl = export_attributes(built.catalog, built.settings, tmp_path / "a.jsonl", fmt="jsonl")
    wide = export_attributes(built.catalog, built.settings, tmp_path / "a.csv", fmt="csv")
    records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(records) == len(table) == jsonl.rows == wide.rows == FEED_ROWS + len(built.shop)
    assert list(table[0]) == wide.columns and jsonl.values == wide.values
    for record, cells, row in zip(records, table, export_rows(built.catalog), strict=True):
        assert (record["source_id"], cells["source_id"]) == (row.external_id, row.external_id)
        assert record["handle"] == cells["handle"] == (row.handle or row.external_id)
        assert record["handle_is_source_id"] is (row.handle is None) and cells["handle_is_source_id"] == str(
            row.handle is None
        )
        assert record["tags"] == row.tags and record["findings"] == [] and cells["audit_findings"] == ""
        expected = chosen_values(row.attributes, THRESHOLD)
        assert set(record["attributes"]) == set(expected)
        for name, value in expected.items():
            got = record["attributes"][name]
            assert (got["value"], got["origin"], got["model_version"]) == (
                value.value, value.origin, value.model_version
            )  # fmt: skip
            assert (cells[name], cells[f"{name}_origin"], cells[f"{name}_model_version"] or None) == (
                value.value, value.origin, value.model_version
            )  # fmt: skip
            assert float(cells[f"{name}_confidence"]) == got["confidence"] == round(value.confidence, 4)
    planted = next(r for r in records if r["source_id"] == next(
        row.external_id for row in export_rows(built.catalog) if row.product_id == built.planted
    ))  # fmt: skip
    assert planted["attributes"]["colour"]["origin"] == "seller"  # the 0.99 photo colour did not replace it
    assert planted["attributes"]["pattern"] == {
        "value": "Striped", "origin": "photo", "confidence": 0.95, "model_version": "tuned:catalog@test"
    }  # fmt: skip
    assert jsonl.audit == {"included": False, "reason": "no trained model 'catalog': run `sveta train` to add the "
                           "audit's findings"}  # fmt: skip


def test_existing_out_is_refused_without_force(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.csv"
    out.write_text("the shop's own file\n", encoding="utf-8")
    result = _cli(built, monkeypatch, str(out), "--format", "shopify")
    assert result.exit_code == 3 and "already exists" in result.output and "--force" in result.output
    assert out.read_text(encoding="utf-8") == "the shop's own file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left beside it
    result = _cli(built, monkeypatch, str(out), "--format", "shopify", "--force")
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("Handle,Title,Tags,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_bad_date_format_and_source_are_clear_errors(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    for args, words in [
        (["--changed-since", "last tuesday"], "not a date"),
        (["--format", "xlsx"], "unknown export format"),
        (["--source", "nowhere"], "no source named"),
        (["--min-confidence", "1.5"], "between 0 and 1"),
    ]:
        result = _cli(built, monkeypatch, str(out), *args)
        assert result.exit_code == 3 and words in result.output and "Traceback" not in result.output, result.output
        assert "hint:" in result.output and not out.exists()


def test_parse_since_reads_dates_and_times_as_utc() -> None:
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("2024-05-01T12:00:00+02:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(InputError, match="not a date"):
        parse_since("2024-13-01")


def test_changed_since_and_source_filters(catalog: CatalogStore, myntra: Path, tmp_path: Path) -> None:
    _ingest_feed(catalog, _feed(myntra, tmp_path / "feed", n=6))
    before = datetime.now(UTC)
    rows = export_rows(catalog)
    assert len(rows) == 6 and export_rows(catalog, changed_since=before) == []
    tagged = rows[2].product_id
    _plant(catalog, tagged, "Black")  # tagging changes a product without touching its row
    changed = export_rows(catalog, changed_since=before)
    assert [r.product_id for r in changed] == [tagged] and changed[0].updated_at >= before
    assert len(export_rows(catalog, changed_since=before - timedelta(days=1))) == 6
    assert export_rows(catalog, changed_since=datetime.now(UTC) + timedelta(days=1)) == []
    assert len(export_rows(catalog, source="MYNTRA")) == 6 and export_rows(catalog, source="other") == []
    assert export_rows(catalog, source="my\x00ntra") == []
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    report = export_attributes(catalog, settings, tmp_path / "c.jsonl", fmt="jsonl", changed_since=before)
    assert report.rows == 1 and report.values["pattern"] == 1
    with pytest.raises(InputError, match="no source named"):
        export_attributes(catalog, settings, tmp_path / "d.jsonl", source="other")
    assert not (tmp_path / "d.jsonl").exists()


def test_threshold_decides_which_guesses_go_out(built: Built, tmp_path: Path) -> None:
    low = export_attributes(built.catalog, built.settings, tmp_path / "low.csv", fmt="shopify", min_confidence=0.0)
    high = export_attributes(built.catalog, built.settings, tmp_path / "hi.csv", fmt="shopify", min_confidence=1.0)
    assert low.values["sleeve_length"] >= 1 and "sleeve_length" not in high.values  # the 0.5 guess only at 0
    assert all(set(by) == {"seller"} for by in high.origins.values())  # at 1.0 only the sellers' words remain
    assert high.values["category"] == FEED_ROWS < low.values["category"]  # the feed states it; the shop's is read
    text = io.StringIO((tmp_path / "hi.csv").read_text(encoding="utf-8"))
    assert next(csv.reader(text))[:3] == ["Handle", "Title", "Tags"]
    low_header = next(csv.reader(io.StringIO((tmp_path / "low.csv").read_text(encoding="utf-8"))))
    assert "Sleeve (product.metafields.sveta.sleeve)" in low_header  # sleeve_length goes out under the key sleeve


@pytest.mark.slow
def test_audit_findings_join_the_rows_once_a_model_is_trained(myntra: Path, tmp_path: Path) -> None:
    from sveta.images.cache import ImageCache, warm_cache
    from sveta.learn.catalog import train_catalog

    kinds, per_kind = ("Tshirts", "Watches", "Casual Shoes", "Handbags"), 15  # 60 products: training's minimum is 50
    with (myntra / "styles.csv").open(encoding="utf-8", newline="") as handle:
        reader, taken, rows = csv.DictReader(handle), dict.fromkeys(kinds, 0), []
        for row in reader:
            kind = row["articleType"]
            if kind in taken and taken[kind] < per_kind and (myntra / "images" / f"{row['id']}.jpg").is_file():
                taken[kind] += 1
                rows.append(row)
    path = tmp_path / "styles.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    catalog = open_catalog(settings.catalog_url)
    reader_ = FeedReader(path, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(path), records=reader_.records(), state=reader_.state)
    with ImageCache(settings) as cache:
        warm_cache(catalog, cache)
    train_catalog(catalog, settings, text=False)
    report = export_attributes(catalog, settings, tmp_path / "a.jsonl", fmt="jsonl")
    wide = export_attributes(catalog, settings, tmp_path / "a.csv", fmt="csv")
    assert report.audit["included"] and report.audit["n_products"] == len(rows) == report.rows
    assert report.model is not None and report.audit["model"] == report.model == wide.audit["model"]
    records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sum(len(r["findings"]) for r in records) == report.audit["n_findings"]
    for record, cells in zip(records, table, strict=True):
        assert bool(record["findings"]) == bool(cells["audit_findings"])
        for finding in record["findings"]:
            assert f"{finding['attribute']}: {finding['stated']} ({finding['origin']})" in cells["audit_findings"]
    photo = [v for r in records for v in r["attributes"].values() if v["origin"] == "photo"]
    assert all(v["model_version"] == report.model and v["confidence"] >= THRESHOLD for v in photo)
    catalog.engine.dispose()
