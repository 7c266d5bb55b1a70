"""The keyword index on SQLite and a real PostgreSQL: kept in step with ingest and photo tags, ranked, safe input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from sveta.catalog import migrate
from sveta.catalog.attributes import StoredAttribute, replace_image_attributes
from sveta.catalog.copy import copy_catalog
from sveta.catalog.keyword_search import MAX_TERMS, keyword_search, query_terms
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import IngestReport, run_ingest
from sveta.ingest.shopify_records import product_record
from tests.conftest import reset_postgres

ROWS = 40  # the first rows of the shared styles.csv: Palm Tree skirts, Nike tops and track pants, Reebok shoes


def _styles(myntra: Path, tmp_path: Path, *, drop: str = "", edits: dict[str, str] | None = None) -> Path:
    """The first ROWS rows of styles.csv, without the row of id ``drop``, with ``edits`` (old -> new) applied."""
    header, *rows = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[: ROWS + 1]
    rows = [row for row in rows if not drop or not row.startswith(f"{drop},")]
    text = "\n".join([header, *rows]) + "\n"
    for old, new in (edits or {}).items():
        assert old in text
        text = text.replace(old, new)
    feed = tmp_path / "styles.csv"
    feed.write_text(text, encoding="utf-8")
    return feed


def _ingest(catalog: CatalogStore, feed: Path, myntra: Path) -> IngestReport:
    reader = FeedReader(feed, images_dir=myntra / "images")
    return run_ingest(
        catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state
    )


def _found(catalog: CatalogStore, words: str, **options: object) -> list[str]:
    """External ids of the hits, best first."""
    hits = keyword_search(catalog, [words], limit=50, **options)  # type: ignore[arg-type]
    products = [catalog.get_product(h.product_id) for h in hits]
    return [p.external_id for p in products if p is not None]


def _id(catalog: CatalogStore, external_id: str) -> int:
    product = catalog.find_product(external_id)
    assert product is not None
    return product.id


def test_the_index_follows_new_changed_and_unchanged_products(
    catalog: CatalogStore, myntra: Path, tmp_path: Path
) -> None:
    first = _ingest(catalog, _styles(myntra, tmp_path), myntra)
    assert first.new == ROWS
    assert sorted(_found(catalog, "reebok")) == ["10035", "10037", "10039"]  # brand
    assert _found(catalog, "navy blue track pants")[0] == "10012"  # the one product with every word
    assert "10000" in _found(catalog, "casual") and "10000" not in _found(catalog, "sports")  # seller attributes
    assert "10003" in _found(catalog, "topwear")  # an attribute value in no title
    renamed = _styles(myntra, tmp_path, edits={"Feather lite Blue Caps": "Zephyr Blue Caps"})
    second = _ingest(catalog, renamed, myntra)
    assert (second.new, second.changed) == (0, 1)
    assert _found(catalog, "zephyr") == ["10014"] and _found(catalog, "feather") == []
    again = _ingest(catalog, renamed, myntra)
    assert (again.changed, again.unchanged) == (0, ROWS) and _found(catalog, "zephyr") == ["10014"]


def test_gone_products_keep_their_words_and_leave_available_only_results(
    catalog: CatalogStore, myntra: Path, tmp_path: Path
) -> None:
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    assert _ingest(catalog, _styles(myntra, tmp_path, drop="10035"), myntra).gone == 1
    assert _found(catalog, "runtone") == ["10035"]  # like the vector index, the gone product stays, unavailable
    assert _found(catalog, "runtone", available_only=True) == []
    assert sorted(_found(catalog, "reebok", available_only=True)) == ["10037", "10039"]
    revived = _ingest(catalog, _styles(myntra, tmp_path), myntra)
    assert revived.changed == 1
    assert _found(catalog, "runtone", available_only=True) == ["10035"]


def test_photo_attribute_writes_update_the_index(catalog: CatalogStore, myntra: Path, tmp_path: Path) -> None:
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    cap, skirt = _id(catalog, "10014"), _id(catalog, "10000")
    assert _found(catalog, "herringbone") == []
    tags = [StoredAttribute(cap, "pattern", "Herringbone", "image", confidence=0.8, model_version="m1")]
    replace_image_attributes(catalog, [cap, skirt], tags)
    assert _found(catalog, "herringbone") == ["10014"]
    assert "10014" in _found(catalog, "feather")  # the product's own words stay
    replace_image_attributes(catalog, [cap], [StoredAttribute(skirt, "pattern", "Herringbone", "image")])
    assert _found(catalog, "herringbone") == ["10000"]


def test_ranking_puts_a_title_match_above_a_description_only_match(catalog: CatalogStore, myntra: Path) -> None:
    reader = FeedReader(myntra / "styles.csv", images_dir=myntra / "images")
    records = {r.external_id: r for r, _ in zip(reader.records(), range(ROWS), strict=False)}
    in_title = replace(records["10003"], title=records["10003"].title + " Tencel")
    in_description = replace(records["10035"], description="Tencel lining, cushioned insole, rubber outsole.")
    both_orders = [in_description, records["10039"], in_title]
    run_ingest(catalog, name="myntra", kind="csv", location="x", records=iter(both_orders))
    assert _found(catalog, "tencel") == ["10003", "10035"]
    assert _found(catalog, "white tencel")[0] == "10003"


def test_a_shopify_store_is_searchable_by_title_brand_and_type(catalog: CatalogStore, shared: Path) -> None:
    raw = json.loads((shared / "fixtures" / "shopify" / "love-the-label-products.json").read_text(encoding="utf-8"))
    records = [product_record(p, "https://lovethelabel.example") for p in raw["products"]]
    run_ingest(catalog, name="shop", kind="shopify", location="x", records=iter(records))
    by_id = {r.external_id: r.title for r in records}
    assert by_id[_found(catalog, "indigo jacket")[0]] == "Lenny Jacket in Indigo"
    assert [by_id[e] for e in _found(catalog, "outerwear")] == ["Lenny Jacket in Indigo"]
    assert len(_found(catalog, "love the label")) == len(records)
    assert {by_id[e] for e in _found(catalog, "skirts")} == {
        "Madden Midi Skirt in Wuthering Winds Print",
        "Ava Skirt in Kaleidoscope Scarf Print",
    }


def test_limit_and_product_ids_restrict_the_results(catalog: CatalogStore, myntra: Path, tmp_path: Path) -> None:
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    everything = keyword_search(catalog, ["nike"], limit=100)
    assert len(everything) > 20 and [h.score for h in everything] == sorted((h.score for h in everything), reverse=True)
    assert keyword_search(catalog, ["nike"], limit=3) == everything[:3]
    allowed = [everything[-1].product_id, everything[5].product_id, _id(catalog, "10035")]
    restricted = keyword_search(catalog, ["nike"], limit=10, product_ids=allowed)
    assert {h.product_id for h in restricted} == set(allowed[:2])
    assert restricted == [h for h in everything if h.product_id in allowed]  # the same scores, in the same order
    assert keyword_search(catalog, ["nike"], limit=10, product_ids=[]) == []
    assert keyword_search(catalog, ["nike"], limit=0) == []


def test_only_the_first_matches_found_are_ranked_when_a_word_is_everywhere(
    catalog: CatalogStore, myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.catalog import keyword_search as module

    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    everything = keyword_search(catalog, ["nike"], limit=100)
    monkeypatch.setattr(module, "RANKED_AT_MOST", 6)  # ranking then costs 6 rows however many products match
    capped = keyword_search(catalog, ["nike"], limit=100)
    assert len(everything) > 20 and len(capped) == 6
    assert [h.score for h in capped] == sorted((h.score for h in capped), reverse=True)
    if catalog.engine.dialect.name == "sqlite":  # FTS5 reads newest first: the 6 newest matches
        assert {h.product_id for h in capped} == set(sorted(h.product_id for h in everything)[-6:])
    assert len(keyword_search(catalog, ["nike", "shoes"], limit=100)) <= 12  # each of the AND and the OR: 6 at most


def test_in_a_large_catalog_a_word_in_most_products_selects_but_does_not_rank(
    myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bm25 gives such a word an IDF of ~0 but counts its every document (~35 ms a word at 1M): it only filters."""
    from sveta.catalog import keyword_search as module

    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")  # FTS5's bm25: PostgreSQL's ts_rank counts nothing
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    with_both = {h.product_id for h in keyword_search(catalog, ["nike"], limit=50)} & {
        h.product_id for h in keyword_search(catalog, ["black"], limit=50)
    }
    ranked_by_both = keyword_search(catalog, ["nike black"], limit=len(with_both))  # no OR pass to fill the rest
    monkeypatch.setattr(module, "UNRANKED_COMMON_FROM", 0)  # "large" from the first product: 32 of 40 say nike
    both = keyword_search(catalog, ["nike black"], limit=len(with_both))  # the sample is all 40
    assert len(both) >= 3 and {h.product_id for h in both} == {h.product_id for h in ranked_by_both} == with_both
    by_black = keyword_search(catalog, ["black"], limit=50, product_ids=list(with_both))
    assert both == by_black  # the same scores in the same order: bm25 of "black" alone, among the nike products
    assert [h.score for h in both] != [h.score for h in ranked_by_both]  # nike's clamped IDF is gone from them
    only_common = keyword_search(catalog, ["nike"], limit=50)
    nike = keyword_search(catalog, ["nike"], limit=50, product_ids=[h.product_id for h in only_common])
    assert len(only_common) > 20 and {h.score for h in only_common} == {0.0}
    assert [h.product_id for h in only_common] == sorted(h.product_id for h in nike)  # unranked: by id
    typed = keyword_search(catalog, ["nike"], limit=50, prefix_last=True)  # a prefix is ranked, never counted
    assert len(typed) == len(only_common) and min(h.score for h in typed) > 0
    black = len(keyword_search(catalog, ["black"], limit=50))  # under half: ranked so far
    monkeypatch.setattr(module, "RANKED_DOCS_AT_MOST", black)  # the catalog is 40: black's count is within it
    assert min(h.score for h in keyword_search(catalog, ["nike black"], limit=len(with_both))) > 0
    monkeypatch.setattr(module, "RANKED_DOCS_AT_MOST", black - 1)  # over it: black costs too much to count
    assert {h.score for h in keyword_search(catalog, ["nike black"], limit=len(with_both))} == {0.0}
    monkeypatch.setattr(module, "RANKED_DOCS_AT_MOST", 10**9)
    monkeypatch.setattr(module, "SHARE_SAMPLE", 30)  # ids 11-40 ...
    catalog.write(lambda s: s.execute(text("DELETE FROM product_keywords WHERE rowid BETWEEN 21 AND 39")))
    gaps = keyword_search(catalog, ["nike black"], limit=3)  # ... hold 11 documents: too few, every word ranks
    monkeypatch.setattr(module, "UNRANKED_COMMON_FROM", 10**9)
    assert gaps == keyword_search(catalog, ["nike black"], limit=3)  # bm25 of both words, nike's 1e-6 IDF too
    catalog.engine.dispose()


BAD_INPUT = [
    "",
    "   \t\n",
    '"',
    '"red',
    "*",
    "red*",
    "NEAR",
    "NEAR(red dress, 2)",
    "-",
    "-black shorts",
    ":",
    "title:nike heading:red",
    "AND OR NOT",
    "nike AND",
    "'; DROP TABLE products; --",
    "a & b | !c <-> d:* (e)",
    "^nike + {shorts}",
    "😀👗🔥",
    "x" * 500,
    "nike " * 100,
    "платье красное",
    "赤いドレス",
    "caf\u00e9 na\u0303o",
    "\x00\x01",
]


@pytest.mark.parametrize("prefix_last", [False, True])
def test_no_input_reaches_fts_syntax(catalog: CatalogStore, myntra: Path, tmp_path: Path, prefix_last: bool) -> None:
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    results = {text: keyword_search(catalog, [text], limit=5, prefix_last=prefix_last) for text in BAD_INPUT}
    assert all(results[text] == [] for text in ("", "   \t\n", '"', "*", "-", ":", "😀👗🔥", "x" * 500))
    assert results["nike " * 100] and results["-black shorts"] and results["title:nike heading:red"]
    assert keyword_search(catalog, BAD_INPUT, limit=5, prefix_last=prefix_last)  # all of it at once: still words


def test_prefix_last_finds_a_word_being_typed(catalog: CatalogStore, myntra: Path, tmp_path: Path) -> None:
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    assert _found(catalog, "reebok runt") == _found(catalog, "reebok")  # runt is no word: reebok alone matches
    assert _found(catalog, "reebok runt", prefix_last=True)[0] == "10035"


def test_query_terms_are_letters_and_digits_only() -> None:
    assert query_terms('"Red" NEAR(dress*) -blue: 😀 red') == ["red", "near", "dress", "blue"]
    assert query_terms("T-Shirt") == ["t", "shirt"] and query_terms(["Navy", "blue"]) == ["navy", "blue"]
    assert query_terms("Café_Noir") == ["café", "noir"] and query_terms("") == []
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS
    assert query_terms("y" * 500) == ["y" * 64]


def test_the_migration_fills_an_existing_catalog_and_its_downgrade_removes_it(
    catalog: CatalogStore, myntra: Path, tmp_path: Path
) -> None:
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    before = keyword_search(catalog, ["nike navy blue"], limit=20)
    assert migrate.current(catalog.engine) == "0008"
    migrate.downgrade(catalog.engine, "0001")
    assert "product_keywords" not in inspect(catalog.engine).get_table_names()
    migrate.upgrade(catalog.engine)
    assert "product_keywords" in inspect(catalog.engine).get_table_names()
    assert keyword_search(catalog, ["nike navy blue"], limit=20) == before and before


def test_a_catalog_copied_to_postgres_rebuilds_its_index(myntra: Path, tmp_path: Path, postgres_url: str) -> None:
    source = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    _ingest(source, _styles(myntra, tmp_path), myntra)
    reset_postgres(postgres_url)
    copy_catalog(source, postgres_url)
    target = open_catalog(postgres_url)
    try:
        with target.engine.connect() as conn:  # analysed before the keyword rebuild read them (a manual ANALYZE)
            analysed = "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'attributes'"
            assert conn.scalar(text(analysed))
        assert sorted(_found(target, "reebok")) == sorted(_found(source, "reebok")) == ["10035", "10037", "10039"]
        assert _found(target, "navy blue track pants")[0] == "10012"
    finally:
        target.engine.dispose()
        source.engine.dispose()


def test_with_the_keyword_index_off_writes_leave_it_alone(myntra: Path, tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db", keyword_index=False)
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    assert _found(catalog, "reebok") == []  # what the benchmark's baseline measures: ingest without the index
    catalog.engine.dispose()


def test_postgresql_plans_each_keyword_query_for_its_words(myntra: Path, tmp_path: Path, postgres_url: str) -> None:
    reset_postgres(postgres_url)
    catalog = open_catalog(postgres_url)
    _ingest(catalog, _styles(myntra, tmp_path), myntra)
    expected = _found(catalog, "nike navy blue")

    @event.listens_for(catalog.engine, "connect")
    def generic(dbapi_conn: Any, _record: Any) -> None:  # what PostgreSQL may choose for a statement psycopg prepared
        dbapi_conn.execute("SET plan_cache_mode = force_generic_plan")
        dbapi_conn.commit()

    catalog.engine.dispose()  # new connections, each with the listener
    for _ in range(8):  # psycopg prepares the statement after five runs
        assert _found(catalog, "nike navy blue") == expected and expected
    with catalog.engine.connect() as conn:  # the pool's one connection, which ran them all
        plans = "SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements"
        plans += " WHERE strpos(statement, '@@') > 0"  # the keyword statements
        generic_plans, custom_plans = conn.exec_driver_sql(plans).one()
        after = [conn.exec_driver_sql(f"SHOW {name}").scalar() for name in ("plan_cache_mode", "synchronize_seqscans")]
    catalog.engine.dispose()
    # a generic plan computes the tsquery for each row it filters (10x slower at a million products)
    assert generic_plans == 0 and custom_plans > 0, (generic_plans, custom_plans)
    assert after == ["force_generic_plan", "on"]  # the search's settings ended with its transaction
