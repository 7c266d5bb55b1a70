"""CSV / JSONL feeds and folders of photos, on the real Myntra files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from sveta.catalog.store import CatalogStore
from sveta.errors import InputError
from sveta.ingest.feeds import FeedReader, read_folder
from sveta.ingest.pipeline import run_ingest
from sveta.ingest.text_attributes import normalize_value


def _myntra_subset(myntra: Path, tmp_path: Path, n: int = 60) -> Path:
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[: n + 1]
    target = tmp_path / "styles.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_myntra_styles_need_no_mapping(myntra: Path, tmp_path: Path) -> None:
    feed = _myntra_subset(myntra, tmp_path)
    records = list(FeedReader(feed, images_dir=myntra / "images").records())
    assert len(records) == 60
    first = records[0]
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert first.external_id == row["id"] and first.title == row["productDisplayName"]
    assert first.brand == row["productDisplayName"].split()[0]
    seller = {a.name: (a.value, a.evidence) for a in first.attributes}
    assert seller["category"] == (row["articleType"], "articleType")
    assert seller["colour"] == (row["baseColour"], "baseColour")
    assert {"gender", "occasion", "season", "master_category", "sub_category"} <= set(seller)
    assert first.images[0].url == (myntra / "images" / f"{row['id']}.jpg").resolve().as_uri()


def test_unquoted_comma_in_title_is_kept(tmp_path: Path) -> None:
    feed = tmp_path / "styles.csv"
    feed.write_text(
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
        "1,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Brand Men Blue Shirt, Pack of 2\n",
        encoding="utf-8",
    )
    (record,) = FeedReader(feed).records()
    assert record.title == "Brand Men Blue Shirt, Pack of 2"


def test_generic_csv_with_mapping_and_bad_rows(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "sku,name,shade,cost,photo\n"
        'A1,Red floral dress,Red,"1,299.00",https://cdn.example/a1.jpg|https://cdn.example/a1b.jpg\n'
        ",no id here,Blue,10,\n",
        encoding="utf-8",
    )
    reader = FeedReader(feed, overrides={"id": "sku", "colour": "shade", "price": "cost", "image": "photo"})
    records = list(reader.records())
    assert [r.external_id for r in records] == ["A1"]
    assert records[0].title == "Red floral dress" and records[0].price == 1299.0
    assert [i.url for i in records[0].images] == ["https://cdn.example/a1.jpg", "https://cdn.example/a1b.jpg"]
    assert ("colour", "Red") in {(a.name, a.value) for a in records[0].attributes}
    assert reader.skipped and "no id" in reader.state.notes[0]


def test_mapping_to_a_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'nope'"):
        list(FeedReader(feed, overrides={"title": "nope"}).records())


def test_html_instead_of_a_feed_is_refused(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("<!DOCTYPE html><html><body>Sign in</body></html>", encoding="utf-8")
    with pytest.raises(InputError, match="HTML page"):
        list(FeedReader(feed).records())


def test_jsonl_feed_skips_bad_lines(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    lines = [
        json.dumps(
            {
                "id": 1,
                "title": "Black leather boots",
                "images": [{"src": "https://cdn.example/1.jpg"}],
                "tags": ["winter", "boots"],
                "available": False,
            }
        ),
        "{broken json",
        json.dumps([1, 2]),
        json.dumps({"id": "2", "title": "White sneakers", "image": "2.jpg"}),
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = FeedReader(feed)
    records = list(reader.records())
    assert [r.external_id for r in records] == ["1", "2"]
    assert records[0].tags == ["winter", "boots"] and records[0].available is False
    assert records[1].images[0].url == (tmp_path / "2.jpg").resolve().as_uri()
    assert len(reader.skipped) == 2


def test_jsonl_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="not JSON Lines"):
        list(FeedReader(feed).records())


def test_folder_per_category(myntra: Path, tmp_path: Path, catalog: CatalogStore) -> None:
    ids = {"skirts": ["10000", "10001"], "watches": ["10098"]}
    for category, names in ids.items():
        (tmp_path / "photos" / category).mkdir(parents=True)
        for name in names:
            shutil.copy(myntra / "images" / f"{name}.jpg", tmp_path / "photos" / category / f"{name}.jpg")
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    report = run_ingest(
        catalog, name="folder", kind="folder", location="x", records=read_folder(tmp_path / "photos")
    )
    assert report.new == 3
    product = catalog.find_product("watches/10098.jpg")
    assert product is not None and product.images[0].url.startswith("file://")
    assert product.category is not None and product.category == normalize_value("category", "watches")


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no photos"):
        list(read_folder(tmp_path))
