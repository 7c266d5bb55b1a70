"""Hybrid search: keyword rank, vector rank and agreement with the parsed intent, fused; each result says why.

A query (words, or a photo refined by words) is read into an Intent. Its hard parts (gender, brand, price, "not
...") filter; its soft parts (category, colour, pattern, ...) are scored against each candidate's attributes (the
seller's value first, photo tags where the listing lacks one). Candidates come from three lists: the keyword index,
the vector index, and the vector index narrowed to the asked category and colour (so an item that has them is
considered even when its title and photo rank it low). Ranks fuse by weighted reciprocal rank (Cormack et al.):
robust to the two lists' score scales, and its few weights are chosen on a validation split (`sveta eval queries`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy.pool import SingletonThreadPool

from sveta.catalog.keyword_search import KeywordHit, keyword_search
from sveta.catalog.queries import ProductCard, first_image_ids, product_attributes, product_cards
from sveta.catalog.store import CatalogStore
from sveta.engines.intent import agreement, best_values, checker, excluded_by, hard_filter, price_band_fit, wanted
from sveta.index.base import Filter, Hit, VectorIndex
from sveta.vocab.query import Intent
from sveta.vocab.query_words import query_words


@dataclass(frozen=True, slots=True)
class Fusion:
    """The weights of the three signals (chosen on the validation part of `sveta eval queries`)."""

    # Chosen on the validation part of the shared data (sveta eval queries --part val --tune): the best mean P@10
    # of the grid of 27, 0.979 against 0.964-0.979 for the others (the words' own ranks matter, but less than
    # agreement with what they ask; the text map's look-alike rank least).
    keyword: float = 1.0
    vector: float = 0.5
    attributes: float = 6.0  # a full agreement is worth this many first places in one list
    rrf_k: int = 60  # the reciprocal-rank constant: larger flattens the head of each list
    pool: int = 50  # candidates from each list: on validation 50 answers as 100 did, at 100k products 1.4x faster


FUSION = Fusion()


@dataclass(slots=True)
class Ranked:
    """A fused result: the product, the photo that matched (if a vector did), the fused score and the reasons."""

    card: ProductCard
    image_id: int
    score: float
    why: list[str]


@dataclass(slots=True)
class _Candidate:
    keyword_rank: int | None = None
    keyword_terms: tuple[str, ...] = ()
    vector_rank: int | None = None
    vector: Hit | None = None


_NOT_KEYWORDS = ("price_min", "price_max", "price_band", "gender", "age_group")  # filters, not words to look up


def keyword_words(intent: Intent) -> list[str]:
    """The words to look up in the keyword index: what the shopper asked for, without negated and price words.

    A brand goes in as the catalog spells it (so a typo still finds it); gender words are a filter, not keywords.
    """
    stop = query_words().stop
    words: list[str] = []
    for span in intent.spans:
        if span.key.startswith("excluded.") or span.key in _NOT_KEYWORDS:
            continue
        words += [span.value] if span.key == "brand" else span.words.split()
    words += intent.rest.split()
    return [w for w in words if w.casefold() not in stop]


def hybrid_rank(
    catalog: CatalogStore,
    index: VectorIndex,
    intent: Intent,
    vectors: np.ndarray | Callable[[], np.ndarray | None] | None,
    k: int,
    flt: Filter | None,
    *,
    use_keywords: bool = True,
    fusion: Fusion = FUSION,
) -> list[Ranked]:
    """The best ``k`` products for ``intent`` and the query ``vectors`` (rows; None: words only), hard filters kept.

    ``vectors`` may be a function that makes them (the text model): the keyword index is read meanwhile, in a
    worker thread. When the words' gender or brand leave fewer than ``k``, the rest is filled without them (ranked
    below).
    """
    flt = flt or Filter()
    strict = hard_filter(intent, flt)
    words = tuple(keyword_words(intent)) if use_keywords else ()
    keywords = _keyword_hits(catalog, words, max(fusion.pool, 3 * k), bool(strict.available)) if use_keywords else None
    try:
        query = _Query(intent, vectors() if callable(vectors) else vectors, words, keywords, fusion)
        ranked = _rank(catalog, index, query, k, strict)
        if len(ranked) < k and (strict.gender, strict.brand) != (flt.gender, flt.brand):
            loose = hard_filter(intent, flt, gender_and_brand=False)
            loose.exclude_products = [*loose.exclude_products, *(r.card.product_id for r in ranked)]
            ranked += _rank(catalog, index, query, k - len(ranked), loose)
    except BaseException:
        if keywords is not None:
            keywords.cancel()  # a look-up still queued (a busy server) is dropped with the request
        raise
    return ranked


@dataclass(frozen=True, slots=True)
class _Query:
    intent: Intent
    vectors: np.ndarray | None
    words: tuple[str, ...]  # what the keyword index is asked (keyword_words)
    keywords: Future[list[KeywordHit]] | None  # the words' hits at the first pass's pool (the second's is no larger)
    fusion: Fusion


_KEYWORD_WORKERS = 8  # keyword look-ups at once, across a server's requests; more wait their turn
_workers: ThreadPoolExecutor | None = None
_workers_made = threading.Lock()


def _keyword_hits(
    catalog: CatalogStore, words: tuple[str, ...], pool: int, available: bool
) -> Future[list[KeywordHit]]:
    """The words' keyword hits, read in a worker thread while the caller embeds the text and searches the vectors:
    on 2 cores at a million products the look-up (~17 ms) and the text model (~10 ms) overlap. The database and
    the FTS engine release the GIL. Gender and brand filter after fusion, so both passes share one look-up."""
    global _workers
    if not words or isinstance(catalog.engine.pool, SingletonThreadPool):
        # an in-memory SQLite catalog is one connection per thread: a worker would see an empty database
        done: Future[list[KeywordHit]] = Future()
        done.set_result(keyword_search(catalog, list(words), limit=pool, available_only=available) if words else [])
        return done
    with _workers_made:
        _workers = _workers or ThreadPoolExecutor(_KEYWORD_WORKERS, thread_name_prefix="sveta-keywords")
    return _workers.submit(keyword_search, catalog, list(words), limit=pool, available_only=available)


def _forget_workers() -> None:
    global _workers
    _workers = None  # a forked child has the pool's object but none of its threads


os.register_at_fork(after_in_child=_forget_workers)


def _rank(catalog: CatalogStore, index: VectorIndex, query: _Query, k: int, flt: Filter) -> list[Ranked]:
    intent, fusion = query.intent, query.fusion
    pool = max(fusion.pool, 3 * k)
    candidates: dict[int, _Candidate] = {}
    if query.vectors is not None:
        _vector_candidates(index, intent, query.vectors, pool, flt, candidates)
    if query.keywords is not None:
        for rank, hit in enumerate(query.keywords.result()[:pool]):
            out = candidates.setdefault(hit.product_id, _Candidate())
            out.keyword_rank, out.keyword_terms = rank, query.words
    cards = product_cards(catalog, list(candidates), photos=False)  # the results' photos: _with_photos
    attributes = product_attributes(catalog, list(cards), {*wanted(intent), *intent.excluded})
    cuts = _price_cuts([c.price for c in cards.values()]) if intent.price_band else None
    ranked, passes = [], checker(flt)
    for pid, card in cards.items():
        values = best_values(card, attributes.get(pid, []))
        if not passes(card) or excluded_by(intent, card, values):
            continue
        ranked.append(_fuse(candidates[pid], card, intent, values, cuts, fusion))
    ranked.sort(key=lambda r: (-r.score, r.card.product_id))
    return _with_photos(catalog, ranked[:k])


def _vector_candidates(
    index: VectorIndex, intent: Intent, vectors: np.ndarray, pool: int, flt: Filter, out: dict[int, _Candidate]
) -> None:
    hits = [hit for row in index.search(vectors, pool, flt) for hit in row]
    narrowed = _narrowed(intent, flt)
    if narrowed is not None:
        hits += [hit for row in index.search(vectors, pool, narrowed) for hit in row]
    best: dict[int, Hit] = {}
    for hit in hits:
        if hit.product_id not in best or hit.score > best[hit.product_id].score:
            best[hit.product_id] = hit
    for rank, hit in enumerate(sorted(best.values(), key=lambda h: -h.score)):
        out.setdefault(hit.product_id, _Candidate()).vector_rank = rank
        out[hit.product_id].vector = hit


def _narrowed(intent: Intent, flt: Filter) -> Filter | None:
    """``flt`` plus the asked category and colour (close shades too), or None when the words name neither."""
    asked = wanted(intent)
    if "category" not in asked and "colour" not in asked:
        return None
    out = replace(flt)
    if "category" in asked and flt.category is None:
        out.category = [asked["category"]]
    if "colour" in asked and flt.colour is None:
        out.colour = [asked["colour"], *intent.colour_near]
    return out


def _fuse(
    c: _Candidate,
    card: ProductCard,
    intent: Intent,
    values: dict[str, tuple[str, str, float]],
    cuts: tuple[float, float] | None,
    fusion: Fusion,
) -> Ranked:
    top = 1.0 / (fusion.rrf_k + 1)
    agree, why = agreement(intent, card, values)
    score = fusion.attributes * top * (agree + 0.5 * price_band_fit(intent.price_band, card.price, cuts))
    if c.keyword_rank is not None:
        score += fusion.keyword / (fusion.rrf_k + 1 + c.keyword_rank)
        why = [*_keyword_why(card, c.keyword_terms), *why]
    if c.vector is not None and c.vector_rank is not None:
        score += fusion.vector / (fusion.rrf_k + 1 + c.vector_rank)
        why.append(f"looks like: {c.vector.score:.2f}")
    return Ranked(card, c.vector.id if c.vector else -1, score, why)


def _keyword_why(card: ProductCard, words: tuple[str, ...]) -> list[str]:
    """Which of the words the title or the brand holds ("title: nike red"); "keywords" when only other fields do."""
    title = card.title.casefold()
    in_title = [w for w in words if w.casefold() in title]
    if in_title:
        return ["title: " + " ".join(in_title)]
    if card.brand and any(w.casefold() == card.brand.casefold() for w in words):
        return [f"brand: {card.brand}"]
    return ["keywords: " + " ".join(words)]


def _price_cuts(prices: list[float | None]) -> tuple[float, float] | None:
    known = [p for p in prices if p is not None]
    if len(known) < 3:
        return None
    low, high = np.quantile(known, [1 / 3, 2 / 3])
    return float(low), float(high)


def _with_photos(catalog: CatalogStore, ranked: list[Ranked]) -> list[Ranked]:
    """Keyword-only results show the product's first indexed photo."""
    missing = [r.card.product_id for r in ranked if r.image_id < 0]
    if missing:
        firsts = first_image_ids(catalog, missing)
        for r in ranked:
            if r.image_id < 0:
                r.image_id = firsts.get(r.card.product_id, -1)
    return ranked


__all__ = ["FUSION", "Fusion", "Ranked", "hybrid_rank", "keyword_words"]
