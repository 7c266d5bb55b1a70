"""Catalog store on SQLite and a real PostgreSQL: idempotent upserts, gone-marking, runs, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, inspect, select

from sveta.catalog import migrate
from sveta.catalog.models import Attribute, CrawlRun, Image, Product, UTCDateTime, Variant
from sveta.catalog.records import AttributeRecord, ImageRecord, ProductRecord, VariantRecord
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.ingest.pipeline import run_ingest


def _product(pid: str, *, updated: int = 1, price: str = "10.0", title: str | None = None) -> ProductRecord:
    return ProductRecord(
        external_id=pid,
        title=title or f"Navy blue striped cotton shirt {pid}",
        product_type="Shirts",
        tags=["men", "formal"],
        updated_at=datetime(2026, 1, updated, tzinfo=UTC),
        variants=[
            VariantRecord(external_id=f"{pid}-s", size="S", price=float(price), position=1),
            VariantRecord(external_id=f"{pid}-m", size="M", price=float(price) + 5, available=False, position=2),
        ],
        images=[
            ImageRecord(url=f"https://cdn.example/{pid}/1.jpg", position=1, variant_ids=[f"{pid}-s"]),
            ImageRecord(url=f"https://cdn.example/{pid}/2.jpg", position=2),
        ],
        attributes=[AttributeRecord("colour", "Navy Blue", evidence="baseColour")],
    )


def _ingest(catalog: CatalogStore, records: list[ProductRecord], complete: bool = True):  # type: ignore[no-untyped-def]
    return run_ingest(catalog, name="shop", kind="test", location="mem", records=iter(records), complete=complete)


def _count(catalog: CatalogStore, model: type) -> int:
    with catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_new_then_unchanged_writes_nothing(catalog: CatalogStore) -> None:
    first = _ingest(catalog, [_product("1"), _product("2")])
    assert (first.new, first.changed, first.unchanged, first.status) == (2, 0, 0, "ok")
    with catalog.session() as s:
        stamps = dict(s.execute(select(Product.external_id, Product.updated_at)).all())
    second = _ingest(catalog, [_product("1"), _product("2")])
    assert (second.new, second.changed, second.unchanged) == (0, 0, 2)
    with catalog.session() as s:
        assert dict(s.execute(select(Product.external_id, Product.updated_at)).all()) == stamps
    assert _count(catalog, Product) == 2 and _count(catalog, Variant) == 4 and _count(catalog, Image) == 4


def test_product_fields_variants_images_attributes(catalog: CatalogStore) -> None:
    _ingest(catalog, [_product("7", price="19.5")])
    product = catalog.find_product("7")
    assert product is not None
    assert (product.price_min, product.price_max, product.available) == (19.5, 24.5, True)
    assert [v.size for v in product.variants] == ["S", "M"] and product.variants[1].available is False
    assert product.images[0].variant_ids == ["7-s"] and product.images[0].status == "pending"
    origins = {(a.name, a.origin) for a in product.attributes}
    assert ("colour", "seller") in origins and ("category", "text") in origins
    assert product.colour == "Navy Blue" and product.gender == "Men"
    text_pattern = [a for a in product.attributes if a.name == "pattern" and a.origin == "text"]
    assert text_pattern and "strip" in (text_pattern[0].evidence or "").lower()


def test_changed_product_keeps_cache_and_photo_attributes(catalog: CatalogStore) -> None:
    _ingest(catalog, [_product("1")])
    product = catalog.find_product("1")
    assert product is not None
    image_id = product.images[0].id
    catalog.mark_image_cached(image_id, sha256="a" * 64, local_path="/x.jpg", width=10, height=20)
    with catalog.session() as s:
        s.add(Attribute(product_id=product.id, name="colour", value="Blue", origin="image", confidence=0.9))
    report = _ingest(catalog, [_product("1", updated=2, price="12.0")])
    assert (report.new, report.changed) == (0, 1)
    product = catalog.find_product("1")
    assert product is not None and product.price_min == 12.0
    cached = next(i for i in product.images if i.id == image_id)
    assert (cached.status, cached.sha256, cached.width) == ("cached", "a" * 64, 10)
    assert any(a.origin == "image" for a in product.attributes)
    assert _count(catalog, Product) == 1 and _count(catalog, Variant) == 2


def test_vanished_product_is_marked_gone_never_deleted(catalog: CatalogStore) -> None:
    _ingest(catalog, [_product("1"), _product("2")])
    report = _ingest(catalog, [_product("1")])
    assert report.gone == 1
    gone = catalog.find_product("2")
    assert gone is not None and gone.available is False and gone.gone_at is not None
    assert len(gone.variants) == 2  # nothing deleted
    back = _ingest(catalog, [_product("1"), _product("2")])
    assert back.changed == 1 and back.gone == 0
    again = catalog.find_product("2")
    assert again is not None and again.available is True and again.gone_at is None


def test_incomplete_run_marks_nothing_gone(catalog: CatalogStore) -> None:
    _ingest(catalog, [_product("1"), _product("2")])
    report = _ingest(catalog, [_product("1")], complete=False)
    assert report.gone == 0
    product = catalog.find_product("2")
    assert product is not None and product.available


def test_duplicates_in_one_run_are_counted_once(catalog: CatalogStore) -> None:
    report = _ingest(catalog, [_product("1"), _product("1"), _product("2")])
    assert (report.new, report.duplicates) == (2, 1)


def test_failed_reader_keeps_what_was_read_and_records_the_run(catalog: CatalogStore) -> None:
    from sveta.errors import SourceError

    def records():  # type: ignore[no-untyped-def]
        yield _product("1")
        raise SourceError("store went away")

    try:
        run_ingest(catalog, name="shop", kind="test", location="mem", records=records())
    except SourceError:
        pass
    else:
        raise AssertionError("the reader's error must reach the caller")
    assert catalog.find_product("1") is not None
    run = catalog.runs("shop")[0]
    assert run.status == "failed" and "store went away" in run.errors[0] and run.new == 1


def test_stale_running_run_becomes_interrupted(catalog: CatalogStore) -> None:
    source_id = catalog.ensure_source("shop", "test", "mem")
    stale = catalog.start_run(source_id)  # a process killed here never finishes its run
    with catalog.session() as s:
        s.get(CrawlRun, stale).pid = 2**22 + 12345  # type: ignore[union-attr]  # no such process
    _ingest(catalog, [_product("1")])
    with catalog.session() as s:
        assert s.get(CrawlRun, stale).status == "interrupted"  # type: ignore[union-attr]


def test_a_live_ingest_of_the_same_source_blocks_another(catalog: CatalogStore) -> None:
    from sveta.errors import CatalogError

    source_id = catalog.ensure_source("shop", "test", "mem")
    catalog.start_run(source_id)  # this very process is alive and "running" it
    with pytest.raises(CatalogError, match="another ingest of this source is running"):
        _ingest(catalog, [_product("1")])
    assert catalog.count_products() == 0


def test_over_long_values_fit_their_columns(catalog: CatalogStore) -> None:
    record = _product("1")
    record.currency, record.brand = "US Dollars", "B" * 400
    record.variants[0].size = "S" * 100
    record.attributes.append(AttributeRecord("material", "cotton " * 60))
    assert _ingest(catalog, [record]).new == 1  # PostgreSQL refuses over-long strings; they are cut to fit
    product = catalog.find_product("1")
    assert product is not None and product.currency == "US Dolla" and len(product.brand or "") == 255


def test_migrations_downgrade_and_upgrade(catalog: CatalogStore) -> None:
    _ingest(catalog, [_product("1")])
    assert migrate.current(catalog.engine) == "0003"
    migrate.downgrade(catalog.engine, "base")
    assert "products" not in inspect(catalog.engine).get_table_names()
    migrate.upgrade(catalog.engine)
    assert {"products", "variants", "images", "attributes", "sources", "crawl_runs"} <= set(
        inspect(catalog.engine).get_table_names()
    )
    assert catalog.count_products() == 0


def test_a_bad_database_url_is_reported_without_its_password() -> None:
    from sveta.errors import CatalogError

    with pytest.raises(CatalogError) as caught:
        open_catalog("mysql+nodriver://user:s3cret@db.example/catalog")
    assert "s3cret" not in str(caught.value) and "user:***@db.example" in str(caught.value)


def test_a_timestamp_with_an_offset_keeps_its_instant_on_sqlite(tmp_path: Path) -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    table.metadata.create_all(engine)
    new_york = datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, "at": new_york}])
        stored = conn.scalar(select(table.c.at))
    assert stored == new_york and stored.tzinfo == UTC and stored.hour == 15


def test_a_nul_in_a_reference_or_filter_matches_nothing_on_both_databases(catalog: CatalogStore) -> None:
    """PostgreSQL cannot compare text holding a NUL (psycopg DataError): the library answers before asking it."""
    from sveta.catalog.browse import ProductQuery, find_source, list_products, list_runs
    from sveta.catalog.queries import resolve_product
    from sveta.errors import InputError

    _ingest(catalog, [_product("1")])
    with pytest.raises(InputError, match="NUL"):
        resolve_product(catalog, "1\x00")
    for query in (ProductQuery(brand=["a\x00b"]), ProductQuery(category=["x\x00"]), ProductQuery(source=["s\x00"])):
        assert list_products(catalog, query).total == 0
    assert list_products(catalog, ProductQuery(category=["x\x00", "shirts"])).total == 1
    assert find_source(catalog, "shop\x00") is None and list_runs(catalog, "shop\x00") == []
