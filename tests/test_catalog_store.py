"""Catalog store on SQLite and a real PostgreSQL: idempotent upserts, gone-marking, runs, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, inspect, select, text

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
    assert migrate.current(catalog.engine) == "0008"
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


def test_the_fingerprint_is_the_digest_it_always_was() -> None:
    """A catalog stored before the fast fingerprint must not see every product as changed on its next sync."""
    import hashlib
    import json
    from dataclasses import asdict

    record = _product("9")
    record.updated_at, record.created_at = None, datetime(2025, 5, 1, tzinfo=UTC)
    record.raw = {"id": 9, "nested": {"sizes": ["S", "M"], "price": 1.5}, "note": None}
    record.variants[0].options = {"Size": "S"}
    expected = "h:" + hashlib.sha256(json.dumps(asdict(record), sort_keys=True, default=str).encode()).hexdigest()[:32]
    assert record.fingerprint() == expected
    record.images[0].alt = "front"
    assert record.fingerprint() != expected


def test_an_unchanged_product_is_not_derived_again(catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import sveta.ingest.text_attributes as text_attributes

    calls: list[str] = []
    extract = text_attributes.extract_text_attributes
    monkeypatch.setattr(
        text_attributes, "extract_text_attributes", lambda title, *a: calls.append(title) or extract(title, *a)
    )
    _ingest(catalog, [_product("1"), _product("2")])
    assert len(calls) == 2
    report = _ingest(catalog, [_product("1"), _product("2", updated=2)])
    assert (report.unchanged, report.changed, len(calls)) == (1, 1, 3)
    changed = catalog.find_product("2")
    assert changed is not None and {a.origin for a in changed.attributes} == {"seller", "text"}


def test_an_unchanged_batch_opens_no_write_and_a_returning_product_is_written(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    upsert = catalog.upsert_batch
    monkeypatch.setattr(
        catalog, "upsert_batch", lambda source, batch, **kw: writes.append(len(batch)) or upsert(source, batch, **kw)
    )
    _ingest(catalog, [_product("1"), _product("2")])
    assert writes == [2]
    report = _ingest(catalog, [_product("1"), _product("2")])
    assert (report.unchanged, report.new, report.changed, writes) == (2, 0, 0, [2])  # read, compared, not written
    _ingest(catalog, [_product("1")])  # 2 is gone ...
    report = _ingest(catalog, [_product("1"), _product("2")])  # ... and back: its batch is written
    assert (report.unchanged, report.changed, writes[-1]) == (1, 1, 2)
    product = catalog.find_product("2")
    assert product is not None and product.gone_at is None


def test_an_underived_product_found_changed_is_derived_before_it_is_written(catalog: CatalogStore) -> None:
    from sveta.catalog.store import PreparedProduct
    from sveta.ingest.pipeline import prepare

    source_id = catalog.ensure_source("shop", "test", "mem")
    light = PreparedProduct(_product("1"), "stale", derived=False)
    with pytest.raises(ValueError, match="not derived"):
        catalog.upsert_batch(source_id, [light])
    assert catalog.upsert_batch(source_id, [light], derive=prepare).new == 1
    product = catalog.find_product("1")
    assert product is not None and product.category == "Shirt" and product.fingerprint == "stale"


def test_planner_statistics_are_refreshed_when_the_catalog_grew(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.ingest.pipeline import PlannerStatistics

    refreshed: list[int] = []
    statistics = PlannerStatistics(catalog, rows=0)
    with monkeypatch.context() as patch:
        patch.setattr(catalog, "refresh_statistics", lambda: refreshed.append(statistics.rows + statistics.added))
        for _ in range(4):
            statistics.added_rows(2000)
        assert refreshed == [6000]  # at FIRST_REFRESH rows; the next when the catalog has doubled
        statistics.finish()  # 2,000 more on 6,000 is over END_GROWTH
        assert refreshed == [6000, 8000]
    catalog.refresh_statistics()  # the real one runs on both databases
    _ingest(catalog, [_product("1")])  # an empty catalog grew: the ingest refreshes them
    with catalog.session() as s:
        if s.connection().dialect.name == "postgresql":
            analysed = (
                "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'products' AND last_analyze IS NOT NULL"
            )
        else:
            analysed = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'products'"
        assert s.scalar(text(analysed)) >= 1  # SQLite: a row per index


def test_sqlite_statistics_are_read_whole_so_a_two_valued_key_is_not_taken_for_a_selective_one(
    catalog: CatalogStore,
) -> None:
    if catalog.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's sampled ANALYZE; PostgreSQL samples rows at random")
    _ingest(catalog, [_product("1")])
    many = (
        "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 3001) "
        "INSERT INTO products (source_id, external_id, title, tags, fingerprint, raw, available, first_seen_at,"
        " last_seen_at, updated_at) SELECT p.source_id, 'x' || n.i, p.title, '[]', '', '{}', n.i % 2,"
        " p.first_seen_at, p.last_seen_at, p.updated_at FROM n, products AS p WHERE p.external_id = '1'"
    )
    catalog.write(lambda s: s.execute(text(many)))

    def rows_a_value() -> int:
        with catalog.session() as s:
            return int(s.scalar(text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_products_available'")).split()[1])

    catalog.refresh_statistics()
    # 3,001 products, two values: about 1,500 a value. A sample of the index's first 1,000 entries (analysis_limit)
    # saw one value and wrote 1,001, and SQLite then read half the catalog through this index for one page.
    assert rows_a_value() >= 1400
    catalog.write(lambda s: [s.execute(text(sql)) for sql in ("PRAGMA analysis_limit = 1000", "ANALYZE products")])
    assert rows_a_value() < 1400  # a catalog analysed by an older sveta
    migrate.downgrade(catalog.engine, "0005")
    migrate.upgrade(catalog.engine)  # migration 0006 analyses it whole
    assert rows_a_value() >= 1400


def test_a_broad_filter_counts_up_to_the_cap(catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from sveta.catalog import browse

    _ingest(catalog, [_product(str(i)) for i in range(4)])
    monkeypatch.setattr(browse, "TOTAL_CAP", 2)
    page = browse.list_products(catalog, browse.ProductQuery(category=["SHIRTS"]), limit=1).as_dict()
    assert (page["total"], page["total_capped"], len(page["items"])) == (2, True, 1)
    deep = browse.list_products(catalog, browse.ProductQuery(category=["shirt"]), limit=2, offset=2)
    assert (deep.total, deep.total_capped, len(deep.items)) == (4, False, 2)  # counted to the end of the page


def test_stats_are_recomputed_when_the_catalog_changes(catalog: CatalogStore) -> None:
    from sveta.catalog.photos import relocate_cached
    from sveta.catalog.stats import _counts, catalog_stats

    def fresh() -> dict[str, object]:
        with catalog.session() as s:
            return _counts(s, 25)

    _ingest(catalog, [_product("1"), _product("2")])
    assert catalog_stats(catalog) == fresh() and catalog_stats(catalog)["products"] == 2
    _ingest(catalog, [_product("1", updated=2, title="Red linen dress, red")])  # changed, and "2" marked gone
    assert catalog_stats(catalog) == fresh() and catalog_stats(catalog)["gone"] == 1
    image_id = catalog.images_to_fetch(limit=1)[0][0]
    catalog.mark_image_cached(image_id, sha256="a" * 64, local_path="/old/x.jpg", width=1, height=1)
    assert catalog_stats(catalog)["images"] == fresh()["images"] == {"pending": 3, "cached": 1}
    relocate_cached(catalog, "/old", Path("/nowhere"))  # the file is not there: pending again
    assert catalog_stats(catalog)["images"] == {"pending": 4}
    assert catalog_stats(catalog, top_words=1)["top_title_words"] == {"red": 2}


def test_references_and_filters_use_indexes_on_sqlite(tmp_path: Path) -> None:
    from sveta.catalog import browse, queries

    store = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    statements = {
        "reference": select(Product.id).where(Product.external_id == "1").order_by(Product.id).limit(1),
        "handle": select(Product.id).where(Product.handle == "h").order_by(Product.id).limit(1),
        "filter": browse._where(select(Product.id), browse.ProductQuery(category=["Shirt"], gender=["men"])),
        "colour": browse._where(select(Product.id), browse.ProductQuery(colour=["navy"])),
    }
    with store.engine.connect() as conn:
        for name, statement in statements.items():
            compiled = statement.compile(store.engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
            assert "SCAN products" not in plan and "INDEX" in plan, (name, plan)
        plan = " ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {queries._BRANDS.text}")))
        assert "SCAN products" not in plan, plan
    store.engine.dispose()


def test_a_resync_reads_fingerprints_and_live_products_from_the_sync_index_alone(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.catalog import sync_reads
    from sveta.catalog.sync_reads import fingerprints_query, live_query

    _ingest(catalog, [_product(str(i)) for i in range(40)])
    _ingest(catalog, [_product(str(i)) for i in range(30)])  # ten gone: the partial index leaves them out
    catalog.refresh_statistics()
    source_id = catalog.ensure_source("shop", "test", "mem")
    dialect = catalog.engine.dialect.name
    # (the live list's order, which kept SQLite's planner off (brand, gone_at) at 1M, is not pinned at this size)
    queries = {
        "fingerprints": fingerprints_query(source_id, ["1", "2", "35"], dialect),
        "live": live_query(source_id, dialect),
    }
    with catalog.engine.connect() as conn:
        held = conn.execute(queries["fingerprints"]).all()
        assert [e for e, _ in held] == ["1", "2"] and all(f for _, f in held)
        if dialect == "sqlite":  # a SQLite before 3.38 (no json_each) gets the plain IN list: the same rows
            monkeypatch.setattr(sync_reads, "JSON_EACH", False)
            plain = sync_reads.fingerprints_query(source_id, ["1", "2", "35"], dialect)
            assert "json_each" not in str(plain) and conn.execute(plain).all() == held
            monkeypatch.undo()
        assert len(conn.execute(queries["live"]).all()) == 30
        if conn.dialect.name == "postgresql":  # a tiny table is scanned whole: ask whether the index can serve
            conn.execute(text("SET enable_seqscan = off; SET enable_bitmapscan = off"))
        for name, query in queries.items():
            sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            plan = " ".join(str(row[-1]) for row in conn.execute(text(explain + sql)))
            # through the unique (source, external id) index each row read the table (1M, cold: 6.4 against 2.1 ms)
            # (SQLite 3.40 says "USING INDEX" for a partial index it reads alone: its bytecode never seeks the table)
            assert "ix_products_source_sync" in plan, (name, plan)
            assert conn.dialect.name == "sqlite" or "Index Only" in plan, (name, plan)
