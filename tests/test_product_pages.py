"""The product list's pages: read pair by pair from the page index, and counted from it alone."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from sveta.catalog import browse
from sveta.catalog.models import Product
from sveta.catalog.store import CatalogStore, open_catalog
from tests.conftest import reset_postgres
from tests.test_catalog_store import _ingest, _product


def test_a_category_and_gender_page_read_pair_by_pair_is_the_plain_querys_page(catalog: CatalogStore) -> None:
    _ingest(catalog, [_product(str(i), price=str(5 + i % 40)) for i in range(240)])
    with catalog.engine.begin() as conn:  # spellings the vocabulary folds together, mixed case, both genders
        for i in range(240):
            category, gender = ["Tshirts", "T-Shirt", "tshirts", "Jeans"][i % 4], ["Men", "men", "Women"][i % 3]
            values = {"c": category, "g": gender, "a": i % 5 != 0, "i": str(i)}
            conn.execute(
                text("UPDATE products SET category = :c, gender = :g, available = :a WHERE external_id = :i"),
                values,
            )
    asked = [
        (browse.ProductQuery(category=["tshirts"], gender=["MEN"]), 7, 0),
        (browse.ProductQuery(category=["T-Shirt", "jeans"], gender=["men", "women"], in_stock=True), 9, 18),
        (browse.ProductQuery(category=["Tshirts"], gender=["Women"], max_price=30.0, min_price=12.0), 5, 3),
        (browse.ProductQuery(category=["tshirts"], gender=["men"], in_stock=True), 50, 60),  # past the last match
    ]
    with catalog.session() as s:
        for query, limit, offset in asked:
            plain = select(Product.id).order_by(Product.id).limit(limit).offset(offset)
            expected = list(s.scalars(browse._where(plain, query)))
            assert browse._page_ids(s, query, limit, offset) == expected, (query, limit, offset)
            assert expected or offset >= 50


def test_a_category_and_gender_page_reads_the_page_index_in_order_on_sqlite(tmp_path: Path) -> None:
    store = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    query = browse.ProductQuery(category=["Tshirts"], gender=["Men"], in_stock=True, max_price=30.0)
    compiled = browse._page_statement(query, 50, 100).compile(store.engine, compile_kwargs={"literal_binds": True})
    with store.engine.connect() as conn:
        plan = {row[0]: (row[1], str(row[-1])) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")}
    store.engine.dispose()
    # "Tshirts" is also "T-Shirt": two pairs, each a co-routine reading the page index in id order up to the page's
    # end. A sort of all of a pair's matches would be a temp B-tree inside it; the sorts outside merge two pages.
    pairs = {step for step, (_, detail) in plan.items() if detail.startswith("CO-ROUTINE")}
    inside = [detail for parent, detail in plan.values() if parent in pairs]
    assert len(pairs) == 2 and all("USING INDEX ix_products_category_gender_page" in d for d in inside), plan


def test_a_page_total_is_counted_from_the_page_index_alone_on_postgresql(postgres_url: str) -> None:
    reset_postgres(postgres_url)
    store = open_catalog(postgres_url)
    _ingest(store, [_product(str(i), price=str(5 + i % 40)) for i in range(300)])
    query = browse.ProductQuery(category=["Shirts"], gender=["Men"], in_stock=True, max_price=30.0)
    compiled = browse._count_statement(query, browse.TOTAL_CAP).compile(
        store.engine, compile_kwargs={"literal_binds": True}
    )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE products")  # what autovacuum does: the visibility map is set
        # a 300-product table is read whole more cheaply: plan as for a large one, where the count costs
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}"))
        total = conn.exec_driver_sql(str(compiled)).scalar()
    store.engine.dispose()
    # without category and gender in the index (before migration 0007) this is an Index Scan: a heap block a row
    assert "Index Only Scan using ix_products_category_gender_page" in plan, plan
    assert "Heap Fetches: 0" in plan and total == sum(5 + i % 40 <= 30 for i in range(300)), (plan, total)


def test_migration_0007_leaves_the_new_page_index_analysed_on_postgresql(postgres_url: str) -> None:
    """An expression's statistics belong to its index: without ANALYZE a rebuilt one has none, and the planner
    guesses a page's share of the catalog."""
    from sveta.catalog import migrate

    reset_postgres(postgres_url)
    store = open_catalog(postgres_url)
    _ingest(store, [_product(str(i)) for i in range(50)])
    migrate.downgrade(store.engine, "0006")
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE products")  # a catalog an older sveta kept analysed
    migrate.upgrade(store.engine)
    with store.engine.connect() as conn:
        stats = conn.execute(
            text("SELECT count(*) FROM pg_stats WHERE tablename = 'ix_products_category_gender_page'")
        ).scalar()
    store.engine.dispose()
    assert stats == 2  # lower(category) and lower(gender)
