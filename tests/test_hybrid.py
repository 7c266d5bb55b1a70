"""Hybrid search on a real trained catalog (SQLite and PostgreSQL): words as filters and boosts, why, photo + words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sveta.catalog.queries import ProductCard, all_product_ids, product_cards
from sveta.catalog.store import CatalogStore
from sveta.engines.search import Searcher
from sveta.errors import InputError
from sveta.index.base import Filter
from tests.conftest import reset_postgres
from tests.test_api import build_catalog


# PostgreSQL in the slow run: the fast one keeps its keyword index in tests/test_keywords.py
@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def searcher(
    request: pytest.FixtureRequest, myntra: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Searcher]:
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url")
        reset_postgres(database_url)
    settings, catalog, _ = build_catalog(myntra, tmp_path_factory.mktemp("hybrid"), database_url)
    yield Searcher(settings, catalog)
    catalog.engine.dispose()


def _cards(catalog: CatalogStore) -> list[ProductCard]:
    return list(product_cards(catalog, all_product_ids(catalog)).values())


def _common(catalog: CatalogStore, category: str) -> tuple[str, int]:
    """The most common colour of a category in the catalog, and how many items have it."""
    colours = Counter(c.colour for c in _cards(catalog) if c.category == category and c.colour)
    return colours.most_common(1)[0]


def test_colour_and_category_lead_and_say_why(searcher: Searcher) -> None:
    colour, n = _common(searcher.catalog, "T-Shirt")
    result = searcher.search_text(f"{colour.lower()} tshirts", k=10)
    assert result.understood["category"] == "T-Shirt" and result.understood["colour"] == colour
    top = result.matches[: min(n, 10)]
    assert all(m.card.category == "T-Shirt" and m.card.colour == colour for m in top), [
        (m.card.category, m.card.colour) for m in top
    ]
    assert any(w == f"colour: {colour} (seller)" for w in top[0].why), top[0].why
    assert any(w.startswith("looks like: ") for m in top for w in m.why)
    vector = searcher.search_text(f"{colour.lower()} tshirts", k=10, hybrid=False)
    assert vector.understood == {} and len(vector.matches) == 10


def test_brand_with_a_typo_is_a_filter(searcher: Searcher) -> None:
    brands = Counter(c.brand for c in _cards(searcher.catalog) if c.brand and len(c.brand) >= 6 and " " not in c.brand)
    brand, n = brands.most_common(1)[0]
    typo = brand[0] + brand[2:]  # one letter dropped: still the brand for names of 5+ letters
    result = searcher.search_text(typo.lower(), k=5)
    assert result.understood.get("brand") == brand, result.understood
    assert result.filters["brand"] == [brand]
    assert [m.card.brand for m in result.matches[: min(n, 5)]] == [brand] * min(n, 5)


def test_negation_and_gender_are_hard(searcher: Searcher) -> None:
    colour, _ = _common(searcher.catalog, "T-Shirt")
    result = searcher.search_text(f"tshirts not {colour.lower()}", k=10)
    assert result.understood["excluded"] == {"colour": [colour]}
    assert result.matches and all(m.card.colour != colour for m in result.matches)
    men = searcher.search_text("men's shirts", k=10)
    assert men.filters["gender"] == ["Men", "Unisex"]
    assert men.matches and all(m.card.gender in ("Men", "Unisex") for m in men.matches)


def test_words_only_and_price_words(searcher: Searcher) -> None:
    words = searcher.search_text("jeans", k=5)
    assert [m.card.category for m in words.matches] == ["Jeans"] * 5
    assert all(m.image_id > 0 and m.card.image_path for m in words.matches)  # the photo shown is a real one
    priced = searcher.search_text("jeans under 50", k=5)  # the catalog has no prices: nothing can be shown as under
    assert priced.understood["price_max"] == 50 and priced.filters["price_max"] == 50
    assert all(m.card.price is not None and m.card.price <= 50 for m in priced.matches)


@pytest.mark.parametrize(
    "text",
    ['"', "*", "NEAR", "-", ":", 'jeans" OR 1=1; --', "NEAR(a b)", "x" * 500, "джинсы синие", "👖👖", "jeans*"],
)
def test_any_text_gives_results_or_a_clear_error(searcher: Searcher, text: str) -> None:
    try:
        result = searcher.search_text(text, k=5)
    except InputError as exc:
        assert "no words" in exc.message and exc.hint
    else:
        assert len(result.matches) <= 5


@pytest.mark.parametrize("text", ["", "   ", "the and of", "👗"])
def test_empty_and_stop_word_queries_are_input_errors(searcher: Searcher, text: str) -> None:
    with pytest.raises(InputError, match="no words to search"):
        searcher.search_text(text, k=5)


def test_photo_refined_by_words_keeps_category_takes_colour(searcher: Searcher, myntra: Path) -> None:
    cards = [c for c in _cards(searcher.catalog) if c.category == "Handbag" and c.image_path]
    colours = Counter(c.colour for c in cards)
    # a bag the neighbours call a bag (in this tiny catalog a green bag's neighbours can be green T-shirts)
    query = next(c for c in cards if _predicted(searcher, c) == "Handbag")
    colour = next(c for c, _ in colours.most_common() if c != query.colour)
    own = Filter(exclude_products=[query.product_id])
    result = searcher.search_photo(query.image_path or "", 5, own, "auto", text=f"in {colour.lower()}")
    assert result.understood["colour"] == colour and result.category == "Handbag"
    top = result.matches[: min(colours[colour], 5)]
    assert all(m.card.colour == colour and m.card.category == "Handbag" for m in top), [
        (m.card.category, m.card.colour) for m in top
    ]
    with pytest.raises(InputError, match="nothing to refine"):
        searcher.search_photo(query.image_path or "", 5, own, "auto", text="👜")


def _predicted(searcher: Searcher, card: ProductCard) -> str | None:
    vector = searcher.embed_photo(card.image_path or "")
    return searcher.predict_category(vector, Filter(exclude_products=[card.product_id]))


def test_several_photos_find_products_like_each(searcher: Searcher) -> None:
    cards = _cards(searcher.catalog)
    jeans = next(c for c in cards if c.category == "Jeans" and c.image_path)
    bag = next(c for c in cards if c.category == "Handbag" and c.image_path)
    result = searcher.search_photo([jeans.image_path or "", bag.image_path or ""], 10, None, None)
    found = {m.card.product_id for m in result.matches}
    assert {jeans.product_id, bag.product_id} <= found  # each photo's own product is its nearest
    assert len(found) == len(result.matches)  # each product once


def test_similar_uses_every_indexed_photo(searcher: Searcher) -> None:
    product = all_product_ids(searcher.catalog)[0]
    result = searcher.similar(product, k=5)
    assert product not in [m.card.product_id for m in result.matches] and len(result.matches) == 5
    assert all(m.why and m.why[0].startswith("looks like: ") for m in result.matches)


def test_the_keyword_index_is_read_while_the_text_is_embedded(
    searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up runs in a worker thread beside the text model, once for both passes; the results are those of
    the look-up and the text model in turn."""
    import threading
    from concurrent.futures import Future

    import numpy as np

    from sveta.catalog.keyword_search import KeywordHit
    from sveta.engines import hybrid

    words = "navy blue formal shirts for men"  # k above the men's products: the second pass, without gender, runs
    intent, k = searcher.understand(words), 300
    made = searcher.embedder.embed_texts([words])[:1]  # type: ignore[attr-defined]
    real_hits, real_search = hybrid._keyword_hits, hybrid.keyword_search

    def in_turn_hits(
        catalog: CatalogStore, words: tuple[str, ...], pool: int, available: bool
    ) -> Future[list[KeywordHit]]:
        done: Future[list[KeywordHit]] = Future()
        done.set_result(real_search(catalog, list(words), limit=pool, available_only=available))
        return done

    with monkeypatch.context() as patch:
        patch.setattr(hybrid, "_keyword_hits", in_turn_hits)
        in_turn = hybrid.hybrid_rank(searcher.catalog, searcher.index, intent, made, k, None)
    reading, embedding = threading.Event(), threading.Event()
    readers: list[str] = []

    def read(*args: object, **kwargs: object) -> list[KeywordHit]:
        readers.append(threading.current_thread().name)
        reading.set()
        assert embedding.wait(10), "the text model did not run while the keyword index was read"
        return real_search(*args, **kwargs)  # type: ignore[arg-type]

    def embed() -> np.ndarray:
        embedding.set()
        assert reading.wait(10), "the keyword look-up did not start before the text model ran"
        return made

    monkeypatch.setattr(hybrid, "keyword_search", read)
    beside = hybrid.hybrid_rank(searcher.catalog, searcher.index, intent, embed, k, None)
    assert hybrid._keyword_hits is real_hits and len(readers) == 1 and readers[0].startswith("sveta-keywords")
    assert len(beside) > 10 and any(r.card.gender not in ("Men", "Unisex") for r in beside)  # the second pass's
    assert [(r.card.product_id, r.score) for r in beside] == [(r.card.product_id, r.score) for r in in_turn]


def test_an_in_memory_catalog_is_looked_up_in_the_calling_thread() -> None:
    """SQLite in memory is one database per thread: a worker thread would find no tables."""
    from sveta.catalog.store import open_catalog
    from sveta.engines import hybrid
    from sveta.vocab.query import parse_query
    from tests.test_catalog_store import _ingest, _product

    catalog = open_catalog("sqlite://")
    _ingest(catalog, [_product("1")])
    looked_up = hybrid._keyword_hits(catalog, tuple(hybrid.keyword_words(parse_query("navy shirt"))), 10, False)
    assert looked_up.done() and [h.product_id for h in looked_up.result()] == [1]


def test_a_word_found_product_passes_a_filter_as_the_index_would_apply_it() -> None:
    from sveta.engines.intent import checker

    card = ProductCard(7, "e7", "shop", "Red Dress", "Nike", "Dresses", "Red", "Women", 40.0, "EUR", True, None, None)
    cases = [
        (Filter(), True),
        (Filter(category=["  dresses "], colour=["RED", "Blue"]), True),  # folded: case and spaces
        (Filter(category=["Tops"]), False),
        (Filter(category=[]), False),  # an empty "any of" allows nothing
        (Filter(brand=["Puma"]), False),
        (Filter(exclude={"colour": ["red"]}), False),
        (Filter(exclude={"colour": ["blue"]}), True),
        (Filter(price_min=40.0, price_max=40.0), True),
        (Filter(price_min=41.0), False),
        (Filter(price_max=39.0), False),
        (Filter(available=False), False),
        (Filter(exclude_products=[7]), False),
        (Filter(source=["shop"], gender=["women"]), True),
    ]
    check_each = [(flt, checker(flt)) for flt, _ in cases]
    assert [check(card) for _, check in check_each] == [want for _, want in cases]
    unpriced = ProductCard(8, "e8", "shop", "Dress", None, None, None, None, None, None, True, None, None)
    assert not checker(Filter(price_max=100.0))(unpriced) and not checker(Filter(colour=["Red"]))(unpriced)
    assert checker(Filter(exclude={"colour": ["red"]}))(unpriced)
