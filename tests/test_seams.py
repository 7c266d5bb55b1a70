"""The seams: sources opened by kind, index backends picked by URL prefix, and the catalog's typed read queries."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from sveta.catalog.outfit_rows import outfit_rows
from sveta.catalog.photos import photo_counts, uncached_count
from sveta.catalog.records import AttributeRecord, ImageRecord, ProductRecord
from sveta.catalog.sources import registered_sources
from sveta.catalog.store import CatalogStore
from sveta.errors import ConfigError, InputError
from sveta.index import backends
from sveta.index.backends import index_target, milvus_target
from sveta.ingest import sources
from sveta.ingest.pipeline import run_ingest
from sveta.ingest.sources import ProductSource, open_source, source_kinds
from sveta.settings import Settings

# -- sources ------------------------------------------------------------------------------------------------------


def test_every_kind_names_a_factory_that_exists() -> None:
    assert source_kinds() == ["shopify", "csv", "jsonl", "folder"]
    for path in sources.BUILTINS.values():
        module, _, name = path.partition(":")
        assert callable(getattr(importlib.import_module(module), name))


def test_an_unknown_kind_lists_the_valid_ones(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown source kind 'ftp'") as caught:
        open_source("ftp", "x", settings=settings)
    assert caught.value.hint == "sources are shopify, csv, jsonl or folder"
    with pytest.raises(ConfigError, match="source old: unknown kind 'ftp'"):
        open_source("ftp", "x", settings=settings, name="old")


def test_a_feed_is_named_by_its_file_and_finds_images_beside_it(tmp_path: Path, settings: Settings) -> None:
    feed = tmp_path / "shop" / "styles.csv"
    (feed.parent / "images").mkdir(parents=True)
    feed.write_text("id,productDisplayName\n1,Red shirt\n")
    source = open_source("csv", str(feed), settings=settings)
    assert isinstance(source, ProductSource)
    assert (source.kind, source.name, source.location) == ("csv", "csv:shop/styles.csv", str(feed))
    assert source.reader.images_dir == (feed.parent / "images").resolve()  # type: ignore[attr-defined]
    named = open_source("jsonl", str(feed), settings=settings, name="mine", mapping={"title": "productDisplayName"})
    assert named.name == "mine" and named.reader.overrides == {"title": "productDisplayName"}  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="feed file not found"):
        open_source("csv", str(tmp_path / "missing.csv"), settings=settings)


def test_a_store_is_named_by_its_host_and_a_folder_by_its_name(tmp_path: Path, settings: Settings) -> None:
    store = open_source("shopify", "Shop.Example/collections/x", settings=settings, name="ignored")
    assert (store.name, store.location) == ("shop.example", "https://shop.example")
    with pytest.raises(ConfigError, match="not a store address"):
        open_source("shopify", "https://", settings=settings)
    folder = open_source("folder", str(tmp_path / "photos"), settings=settings)  # checked when it is read
    assert (folder.kind, folder.name) == ("folder", "folder:photos")


def test_a_folder_source_ingests_its_photos(myntra: Path, tmp_path: Path, catalog: CatalogStore) -> None:
    (tmp_path / "photos" / "skirts").mkdir(parents=True)
    (tmp_path / "photos" / "skirts" / "a.jpg").write_bytes((myntra / "images" / "10000.jpg").read_bytes())
    source = open_source("folder", str(tmp_path / "photos"), settings=Settings(data_dir=tmp_path / "data"))
    steps: list[int] = []
    report = source.ingest(catalog, on_progress=steps.append)
    assert (report.source, report.new, steps) == ("folder:photos", 1, [1])
    assert registered_sources(catalog) == [("folder:photos", "folder", str(tmp_path / "photos"))]


# -- index backends -----------------------------------------------------------------------------------------------


def test_each_prefix_picks_its_backend(tmp_path: Path) -> None:
    def at(url: str) -> Settings:
        return Settings(data_dir=tmp_path, index_url=url)

    assert index_target(at("")).family == "faiss" and index_target(at("  ")).shown == ""
    assert milvus_target(at("")) is None
    lite = index_target(at("milvus-lite:idx"))
    assert lite.family == "milvus" and lite.shown == f"milvus-lite:{tmp_path / 'idx.db'}"
    assert index_target(at("milvus://h:1/c")).shown == "milvus://h:1/c"
    with pytest.raises(ConfigError, match="names no index backend") as caught:
        index_target(at("qdrant://u:secret@h/c"))
    assert "secret" not in caught.value.message
    assert caught.value.hint == f"use one of: {', '.join(b.usage for b in backends.BUILTINS.values())}"


# -- catalog read queries -----------------------------------------------------------------------------------------


def _record(pid: str, **attributes: str) -> ProductRecord:
    return ProductRecord(
        external_id=pid,
        title=f"Plain cotton shirt {pid}",
        attributes=[AttributeRecord(name, value, evidence="test") for name, value in attributes.items()],
        images=[ImageRecord(url=f"https://cdn.example/{pid}.jpg")],
    )


def test_photo_counts_and_outfit_rows(catalog: CatalogStore) -> None:
    records = [_record("1", occasion="Casual", season="Summer"), _record("2", pattern="Striped")]
    run_ingest(catalog, name="shop", kind="test", location="mem", records=iter(records))
    assert photo_counts(catalog) == {"pending": 2} and uncached_count(catalog) == 2
    image_id = catalog.images_to_fetch()[0][0]
    catalog.mark_image_broken(image_id, "gone")
    assert photo_counts(catalog) == {"pending": 1, "broken": 1} and uncached_count(catalog) == 2
    with outfit_rows(catalog, ["occasion", "pattern"], batch=1) as read:
        products = [p for part in read.products for p in part]
        rows = [r for part in read.attributes for r in part]
    assert [p.id for p in products] == sorted(p.id for p in products) and len(products) == 2
    seller = {(r.name, r.value) for r in rows if r.origin == "seller"}
    assert seller == {("occasion", "Casual"), ("pattern", "Striped")}
    assert all(r.name in ("occasion", "pattern") for r in rows)
