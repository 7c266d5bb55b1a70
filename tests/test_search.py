"""Visual search end to end on a real Myntra subset: ingest, index build/update, search, similar, filters, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.engines.search import Searcher
from sveta.errors import ConfigError
from sveta.index.base import Filter
from sveta.index.catalog_index import open_catalog_index, sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.settings import Settings

N = 150


def _feed(myntra: Path, folder: Path, rows: slice) -> Path:
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "styles.csv").write_text("\n".join([lines[0], *lines[1:][rows]]) + "\n", encoding="utf-8")
    return folder / "styles.csv"


def _ingest(catalog: CatalogStore, feed: Path, images: Path) -> None:
    reader = FeedReader(feed, images_dir=images)
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)


@pytest.fixture(scope="module")
def built(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, CatalogStore]]:
    home = tmp_path_factory.mktemp("search")
    settings = Settings(data_dir=home / "data")
    catalog = open_catalog(settings.catalog_url)
    _ingest(catalog, _feed(myntra, home / "feed", slice(0, N)), myntra / "images")
    report = sync_index(catalog, settings)
    assert report.embedded == N and report.count == N
    yield settings, catalog
    catalog.engine.dispose()


def test_a_catalog_photo_finds_its_own_product_first(built: tuple[Settings, CatalogStore], myntra: Path) -> None:
    settings, catalog = built
    searcher = Searcher(settings, catalog)
    product = catalog.find_product("10000")
    assert product is not None
    result = searcher.search_photo(myntra / "images" / "10000.jpg", k=5, category=None)
    assert result.matches[0].card.product_id == product.id
    assert result.matches[0].score > 0.99


def test_a_match_shows_its_photo_and_the_products_first_photo_when_its_own_has_no_file_now(
    built: tuple[Settings, CatalogStore], myntra: Path
) -> None:
    from sveta.catalog.models import Image

    settings, catalog = built
    searcher, product = Searcher(settings, catalog), catalog.find_product("10000")
    assert product is not None
    first = searcher.search_photo(myntra / "images" / "10000.jpg", k=3, category=None).matches[0]
    assert first.card.product_id == product.id and first.card.image_path and first.card.image_path.endswith(".jpg")
    other = str(myntra / "images" / "10001.jpg")
    with catalog.session() as s:  # the matched photo's file is gone (broken), another photo of the product is cached
        s.add(Image(product_id=product.id, url="http://x/extra.jpg", position=5, status="cached", local_path=other))
        s.get_one(Image, first.image_id).status = "broken"
    try:
        again = searcher.search_photo(myntra / "images" / "10000.jpg", k=3, category=None).matches
        assert again[0].image_id == first.image_id and again[0].card.image_path == other
        assert all(m.card.image_path for m in again[1:])  # the others: the photo that matched, as before
    finally:
        with catalog.session() as s:
            s.get_one(Image, first.image_id).status = "cached"
            s.query(Image).filter(Image.url == "http://x/extra.jpg").delete()


def test_filters_return_only_matches_and_still_k(built: tuple[Settings, CatalogStore]) -> None:
    settings, catalog = built
    searcher = Searcher(settings, catalog)
    women = [p for p in (catalog.find_product(str(i)) for i in range(10000, 10200)) if p and p.gender == "Women"]
    assert len(women) >= 10
    result = searcher.similar("10003", k=10, flt=Filter(gender=["Women"]))
    assert len(result.matches) == 10
    assert all(m.card.gender == "Women" for m in result.matches)
    assert all(m.card.source_id != "10003" for m in result.matches)
    rare = searcher.similar("10003", k=10, flt=Filter(colour=["Red"], gender=["Men", "Women"]))
    assert all(m.card.colour == "Red" for m in rare.matches)


def test_searching_leaves_the_callers_filter_as_given(built: tuple[Settings, CatalogStore], myntra: Path) -> None:
    settings, catalog = built
    searcher = Searcher(settings, catalog)
    flt = Filter(gender=["Women", "Men"])
    result = searcher.search_photo(myntra / "images" / "10003.jpg", k=3, flt=flt)
    assert result.category and result.filters["category"] == [result.category]  # the search used a category...
    searcher.similar("10003", k=3, flt=flt, category="auto")
    assert flt == Filter(gender=["Women", "Men"])  # ...and excluded a product, on its own copy of the filter


def test_category_auto_uses_the_predicted_category(built: tuple[Settings, CatalogStore], myntra: Path) -> None:
    settings, catalog = built
    result = Searcher(settings, catalog).search_photo(myntra / "images" / "10003.jpg", k=5)
    own = catalog.find_product("10003")
    assert result.predicted and own is not None and result.category == own.category
    assert all(m.card.category == own.category for m in result.matches)


def test_the_category_vote_reads_the_categories_the_index_holds(
    built: tuple[Settings, CatalogStore], myntra: Path
) -> None:
    from sqlalchemy import update

    from sveta.catalog.models import Product

    settings, catalog = built
    own = catalog.find_product("10003")
    assert own is not None and own.category
    with catalog.session() as s:  # renamed in the catalog, the index not synced: the filter still selects the old
        s.execute(update(Product).where(Product.category == own.category).values(category="Renamed"))
    try:
        result = Searcher(settings, catalog).search_photo(myntra / "images" / "10003.jpg", k=5)
        assert result.predicted and result.category == own.category and len(result.matches) == 5
    finally:
        with catalog.session() as s:
            s.execute(update(Product).where(Product.category == "Renamed").values(category=own.category))


def test_stored_meta_leaves_out_a_photo_no_longer_in_the_index(built: tuple[Settings, CatalogStore]) -> None:
    settings, catalog = built
    searcher = Searcher(settings, catalog)
    present = int(searcher.index.ids()[0])
    metas = searcher.stored_meta([present, 10**12, present])  # 10**12: removed meanwhile (a sync elsewhere)
    assert list(metas) == [present] and metas[present].category
    assert searcher.stored_meta([]) == {}


def test_update_embeds_only_new_photos(built: tuple[Settings, CatalogStore], myntra: Path, tmp_path: Path) -> None:
    settings, catalog = built
    again = sync_index(catalog, settings)
    assert (again.embedded, again.removed, again.unchanged) == (0, 0, N)
    _ingest(catalog, _feed(myntra, tmp_path / "more", slice(0, N + 7)), myntra / "images")
    more = sync_index(catalog, settings)
    assert (more.embedded, more.count) == (7, N + 7)


def test_a_reprice_is_found_as_columns_and_saved_beside_the_same_vectors(
    built: tuple[Settings, CatalogStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from sveta.index.meta import Columns

    settings, catalog = built
    sync_index(catalog, settings, fetch=False)  # whatever earlier tests changed, settled
    ids = [p.id for p in (catalog.find_product("10000"), catalog.find_product("10001")) if p is not None]
    live = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
    inode = (live / "index.faiss").stat().st_ino
    built_meta: list[int] = []
    real_meta = Columns.meta
    monkeypatch.setattr(Columns, "meta", lambda self, rows: (built_meta.append(len(rows)), real_meta(self, rows))[1])
    with catalog.engine.begin() as c:
        old = c.execute(text(f"SELECT id, price_min FROM products WHERE id IN ({ids[0]}, {ids[1]})")).all()
        c.execute(text(f"UPDATE products SET price_min = 123456 WHERE id IN ({ids[0]}, {ids[1]})"))
    try:
        report = sync_index(catalog, settings, fetch=False)
        assert (report.meta_updated, report.embedded, report.removed) == (2, 0, 0)
        assert sum(built_meta) == 0  # no ItemMeta per indexed photo: the comparison is numpy columns
        live = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
        assert (live / "index.faiss").stat().st_ino == inode  # the vectors were not written again
        index = open_catalog_index(settings, create=False)
        assert len(index) == index.config.params["rows"]  # kept their rows: no dead copies
        hits = index.search(index.vectors(index.ids()[:1]), 5, Filter(price_min=100_000))[0]
        assert {h.product_id for h in hits} == set(ids)
    finally:
        with catalog.engine.begin() as c:
            for pid, price in old:
                c.execute(text("UPDATE products SET price_min = :price WHERE id = :id"), {"price": price, "id": pid})
        sync_index(catalog, settings, fetch=False)


def test_opening_the_index_with_another_embedder_is_a_clear_error(built: tuple[Settings, CatalogStore]) -> None:
    settings, _ = built
    with pytest.raises(ConfigError, match="effnet-lite0"):
        open_catalog_index(settings, embedder="colour", create=False)


def test_opening_the_index_with_other_composition_weights_is_a_clear_error(
    built: tuple[Settings, CatalogStore],
) -> None:
    settings, _ = built
    assert open_catalog_index(settings, create=False).config.identity == "effnet-lite0+colour@1,0.6"
    reweighted = settings.model_copy(update={"embed_weights": {"colour": 0.9}})
    with pytest.raises(ConfigError, match=r"weights 1,0.6, settings now give 1,0.9") as caught:
        open_catalog_index(reweighted, create=False)
    assert "sveta index build --rebuild" in (caught.value.hint or "")


def test_cli_search_json_and_sheet(
    built: tuple[Settings, CatalogStore], myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = built
    monkeypatch.setenv("SVETA_DATA_DIR", str(settings.data_dir))
    _common._state.clear()
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["search", str(myntra / "images" / "10000.jpg"), "--k", "4", "--json", "--sheet", str(tmp_path / "sheet.png")],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["matches"][0]["source_id"] == "10000" and payload["category_predicted"]
    assert {m["category"] for m in payload["matches"]} == {payload["category"]}  # auto: inside the predicted one
    anything = runner.invoke(
        app, ["search", str(myntra / "images" / "10000.jpg"), "--k", "4", "--category", "any", "--json"]
    )
    assert len(json.loads(anything.stdout.strip().splitlines()[-1])["matches"]) == 4
    assert (tmp_path / "sheet.png").read_bytes()[:4] == b"\x89PNG"
    similar = runner.invoke(app, ["similar", "10000", "--k", "3", "--gender", "Women", "--json"])
    assert similar.exit_code == 0, similar.output
    matches = json.loads(similar.stdout.strip().splitlines()[-1])["matches"]
    assert len(matches) == 3 and all(m["gender"] == "Women" and m["source_id"] != "10000" for m in matches)
    missing = runner.invoke(app, ["search", str(tmp_path / "nope.jpg")])
    assert missing.exit_code != 0 and "no such photo" in missing.output and "Traceback" not in missing.output
    _common._state.clear()
