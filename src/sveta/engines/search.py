"""The facade the CLI and API call: search by photos, URL or words (hybrid), photo + words, similar, filters."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sveta.catalog.queries import (
    ProductCard,
    brand_names,
    first_image_ids,
    image_paths,
    product_cards,
    product_image_ids,
    resolve_product,
)
from sveta.catalog.rules import Rule, active_rules
from sveta.catalog.store import CatalogStore
from sveta.embed.base import ImageEmbedder, get_embedder
from sveta.embed.pipeline import prepare_photo
from sveta.engines.hybrid import FUSION, Ranked, hybrid_rank, keyword_words
from sveta.engines.intent import hard_filter
from sveta.engines.merch import Context, Note, arrange, fetch_size, pinned_cards
from sveta.errors import ConfigError, InputError
from sveta.index.base import Filter, Hit, ItemMeta, VectorIndex
from sveta.settings import Settings
from sveta.vocab.query import Intent, parse_query
from sveta.vocab.reading import canonical

VOTERS = 20  # neighbours that vote for a category (search's --category auto, look's bottoms)
VOTE_TEMPERATURE = 0.05  # softmax over scores: a near-duplicate outvotes many so-so neighbours
BRANDS_SECONDS = 60.0  # how stale the query reader's brand list may get in a long-running server
Photo = str | Path | bytes


@dataclass
class Match:
    card: ProductCard  # its image_path is the photo that matched
    score: float
    image_id: int
    why: list[str] = field(default_factory=list)
    rule: Note | None = None  # the merchandising rule that moved it (engines/merch.py)

    def as_dict(self) -> dict[str, Any]:
        own = {"score": round(self.score, 4), "image_id": self.image_id, "why": self.why}
        return {**self.card.as_dict(), **own, "rule": self.rule.as_dict() if self.rule else None}


@dataclass
class SearchResult:
    query: str
    matches: list[Match]
    category: str | None = None  # the category filter used (given, or predicted with "auto")
    predicted: bool = False
    filters: dict[str, Any] = field(default_factory=dict)
    understood: dict[str, Any] = field(default_factory=dict)  # what the words were read as (Intent.as_dict)
    hard: Filter = field(default_factory=Filter, repr=False)  # what every match meets, a pinned one too

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "category": self.category,
            "category_predicted": self.predicted,
            "filters": self.filters,
            "understood": self.understood,
            "matches": [m.as_dict() for m in self.matches],
        }


class Searcher:
    """Holds the catalog, the embedder and the index; both model and index load on first use."""

    def __init__(self, settings: Settings, catalog: CatalogStore) -> None:
        self.settings, self.catalog = settings, catalog
        self._index: VectorIndex | None = None
        self._embedder: ImageEmbedder | None = None
        self._brands: tuple[float, list[str]] | None = None
        self.fusion = FUSION  # the hybrid ranking's weights (an evaluation tries others)

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            from sveta.index.catalog_index import open_catalog_index

            self._index = open_catalog_index(self.settings, create=False)
        return self._index

    @property
    def embedder(self) -> ImageEmbedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.index.config.embedder, self.settings)
        return self._embedder

    def brands(self) -> list[str]:
        """The catalog's brands, for reading queries: read again at most every BRANDS_SECONDS (syncs add brands)."""
        now = time.monotonic()
        if self._brands is None or now - self._brands[0] > BRANDS_SECONDS:
            self._brands = (now, brand_names(self.catalog))
        return self._brands[1]

    def understand(self, text: str) -> Intent:
        """The query read with the vocabulary and this catalog's brands."""
        return parse_query(text, self.brands())

    def embed_photo(self, source: str | Path | bytes) -> np.ndarray:
        """One photo (path, bytes, or http(s) URL fetched through the SSRF guard) as a query vector."""
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            from sveta.images.cache import ImageCache

            with ImageCache(self.settings) as cache:
                source = cache.fetch(source).path
        elif isinstance(source, str | Path) and not Path(source).is_file():
            raise InputError(f"no such photo: {source}", "give a path to a JPEG/PNG/WEBP file or an http(s) URL")
        return self.embedder.embed_prepared([prepare_photo(self.embedder, source, self.settings)])[0]

    def search_photo(
        self,
        source: Photo | Sequence[Photo],
        k: int = 10,
        flt: Filter | None = None,
        category: str | None = "auto",
        text: str | None = None,
    ) -> SearchResult:
        """Products that look like the photo (several photos: like any of them), refined by ``text`` when given."""
        sources: list[Photo] = list(source) if isinstance(source, list | tuple) else [source]  # type: ignore[list-item]
        if not sources:
            raise InputError("no photo given", "give one or more photos")
        vectors = np.stack([self.embed_photo(s) for s in sources])
        label = ", ".join(str(s) if isinstance(s, str | Path) else "uploaded photo" for s in sources)
        words = text if text is not None and text.strip() else None
        rules = self.rules()
        n = fetch_size(k, rules, Context.of(words))
        if words is None:
            return self.steer(self.search_vectors(vectors, label, n, flt, category), rules, k, None)
        return self.steer(self.refine(vectors, f"{label} + {words.strip()}", words, n, flt, category), rules, k, words)

    def refine(
        self, vectors: np.ndarray, label: str, text: str, k: int, flt: Filter | None, category: str | None
    ) -> SearchResult:
        """The photos' look with the words' asks: "in red" keeps the style and category, takes the colour."""
        intent = self.understand(text)
        if intent.empty:
            raise InputError(f"nothing to refine by in {text!r}", 'name what to change, e.g. "in red"')
        flt = replace(flt) if flt else Filter()
        predicted = category == "auto" and intent.category is None and flt.category is None
        if predicted:
            category = self.predict_category(_mean(vectors), flt)
        if category and category != "auto" and intent.category is None:
            flt.category = [canonical("category", category)]
        ranked = hybrid_rank(self.catalog, self.index, intent, vectors, k, flt, use_keywords=False, fusion=self.fusion)
        used = flt.category[0] if flt.category else intent.category
        return self._ranked(label, ranked, used, predicted, hard_filter(intent, flt), intent)

    def search_text(
        self,
        text: str,
        k: int = 10,
        flt: Filter | None = None,
        category: str | None = None,
        *,
        hybrid: bool = True,
    ) -> SearchResult:
        """Products that match a description: keywords, the text map (or a CLIP text tower) and the words' intent,
        fused (``hybrid=False``: the vector alone, as before hybrid search)."""
        intent = self.understand(text)
        if intent.empty or not (intent.spans or keyword_words(intent)):
            raise InputError(
                "the text query has no words to search" + (f": {text.strip()!r}" if text.strip() else ""),
                'describe the item, e.g. --text "navy blue formal shirt"',
            )
        embed_texts = getattr(self.embedder, "embed_texts", None)
        rules = self.rules()
        n = fetch_size(k, rules, Context.of(text))
        if not hybrid:
            if embed_texts is None:
                raise ConfigError(
                    f"the index's embedder {self.embedder.spec} cannot embed text",
                    "train on the catalog (sveta train), which indexes with a text map, or use a CLIP embedder",
                )
            return self.steer(
                self.search_vectors(embed_texts([text])[:1], f"text: {text}", n, flt, category), rules, k, text
            )
        flt = replace(flt) if flt else Filter()
        if category:
            flt.category = [canonical("category", category)]
        vectors = (lambda: embed_texts([text])[:1]) if embed_texts is not None else None  # made beside the keywords
        ranked = hybrid_rank(self.catalog, self.index, intent, vectors, n, flt, fusion=self.fusion)
        result = self._ranked(f"text: {text}", ranked, category, False, hard_filter(intent, flt), intent)
        return self.steer(result, rules, k, text)

    def similar(
        self, product: str | int, k: int = 10, flt: Filter | None = None, category: str | None = None
    ) -> SearchResult:
        """Products that look like a catalog product, by any of its photos (the product itself excluded)."""
        product_id = resolve_product(self.catalog, product)
        vectors = self._indexed_vectors(product_image_ids(self.catalog, product_id))
        if not len(vectors):
            raise InputError(f"product {product} has no indexed photo", "run `sveta index update` first")
        flt = flt or Filter()
        flt = replace(flt, exclude_products=[*flt.exclude_products, product_id])  # a copy: the caller's stays
        rules = self.rules()
        result = self.search_vectors(vectors, f"product {product}", fetch_size(k, rules, Context()), flt, category)
        own = product_cards(self.catalog, [product_id], photos=False).get(product_id) if rules else None
        return self.steer(result, rules, k, None, own.category if own else None)

    def rules(self) -> list[Rule]:
        """The merchandising rules in force now: read per request (one query on a small table), so a rule added
        by `sveta rules` or the API applies to the next search of a running server."""
        return active_rules(self.catalog)

    def steer(
        self, result: SearchResult, rules: list[Rule], k: int, words: str | None, *categories: str | None
    ) -> SearchResult:
        """``result`` (ranked with fetch_size(k) candidates) cut to k after the rules; a moved match says why."""
        if not rules:
            result.matches = result.matches[:k]
            return result
        context = Context.of(words, result.category, result.understood.get("category"), *categories)
        cards = pinned_cards(self.catalog, rules, context, result.matches, result.hard)
        firsts = first_image_ids(self.catalog, list(cards)) if cards else {}
        extra = {pid: Match(card, 0.0, firsts.get(pid, -1)) for pid, card in cards.items()}
        arranged = arrange(result.matches, rules, context, k, extra)
        result.matches = [replace(m, why=[*m.why, note.says], rule=note) if note else m for m, note in arranged]
        return result

    def search_vector(
        self, vector: np.ndarray, label: str, k: int, flt: Filter | None, category: str | None
    ) -> SearchResult:
        return self.search_vectors(vector[None, :], label, k, flt, category)

    def search_vectors(
        self, vectors: np.ndarray, label: str, k: int, flt: Filter | None, category: str | None
    ) -> SearchResult:
        """The products nearest to any of ``vectors`` (each scored by its best photo against its best query)."""
        flt = replace(flt) if flt else Filter()  # a copy: the caller's filter stays as given
        predicted = category == "auto"
        if predicted:
            category = self.predict_category(_mean(vectors), flt)
        if category:
            flt.category = [canonical("category", category)]
        best: dict[int, Hit] = {}
        for hits in self.index.search(vectors, k, flt):
            for hit in hits:
                if hit.product_id not in best or hit.score > best[hit.product_id].score:
                    best[hit.product_id] = hit
        hits = sorted(best.values(), key=lambda h: (-h.score, h.product_id))[:k]
        return SearchResult(label, self._matches(hits), category, predicted, filter_summary(flt), hard=flt)

    def predict_category(self, vector: np.ndarray, flt: Filter | None = None) -> str | None:
        """The category most of the nearest neighbours share (score-weighted), as the seeds did with kNN."""
        votes = self.category_votes(vector, Filter(exclude_products=list(flt.exclude_products) if flt else []))
        return max(votes, key=lambda c: votes[c]) if votes else None

    def category_votes(self, vector: np.ndarray, voters: Filter) -> dict[str, float]:
        """The categories of the VOTERS nearest products under `voters`, each with its softmax-weighted vote."""
        hits = self.index.search(vector[None, :], VOTERS, voters)[0]
        metas = self.stored_meta([h.id for h in hits])  # the category a category filter then selects by
        votes: dict[str, float] = {}
        for hit in hits:
            meta = metas.get(hit.id)
            if meta is not None and meta.category:
                weight = float(np.exp((hit.score - hits[0].score) / VOTE_TEMPERATURE))
                votes[meta.category] = votes.get(meta.category, 0.0) + weight
        return votes

    def stored_meta(self, image_ids: Sequence[int]) -> dict[int, ItemMeta]:
        """What the index holds of each photo (category, gender, ...), without a catalog read; a photo no longer in
        it (removed meanwhile from an index shared with a sync, as a Milvus collection is) is left out."""
        return dict(_held(sorted(set(image_ids)), self.index.meta)) if image_ids else {}

    def _matches(self, hits: list[Hit]) -> list[Match]:
        photos = image_paths(self.catalog, [h.id for h in hits])
        # a card shows the photo that matched; its first photo is read only for a hit whose photo has no file now
        firsts = {h.product_id for h in hits if h.id not in photos}
        cards = product_cards(self.catalog, [h.product_id for h in hits if h.product_id not in firsts], photos=False)
        if firsts:
            cards |= product_cards(self.catalog, list(firsts))
        return [
            Match(_shown(cards[h.product_id], photos.get(h.id)), h.score, h.id, [f"looks like: {h.score:.2f}"])
            for h in hits
            if h.product_id in cards
        ]

    def _ranked(
        self, label: str, ranked: list[Ranked], category: str | None, predicted: bool, flt: Filter, intent: Intent
    ) -> SearchResult:
        photos = image_paths(self.catalog, [r.image_id for r in ranked])
        matches = [Match(_shown(r.card, photos.get(r.image_id)), r.score, r.image_id, r.why) for r in ranked]
        return SearchResult(label, matches, category, predicted, filter_summary(flt), intent.as_dict(), flt)

    def _indexed_vectors(self, image_ids: list[int]) -> np.ndarray:
        """The stored vectors of those of ``image_ids`` the index holds (a photo may have failed to embed)."""
        return np.array([vector for _, vector in _held(image_ids, self.index.vectors)], np.float32)


def _held(ids: Sequence[int], read: Callable[[np.ndarray], Any]) -> list[tuple[int, Any]]:
    """(id, what ``read`` gives of it) for those of ``ids`` the index holds: all in one read, or one by one when
    one is missing (``read`` raises KeyError for the whole list)."""
    try:
        return list(zip(ids, read(np.array(ids, np.int64)), strict=True))
    except KeyError:
        out = []
        for one in ids:
            with contextlib.suppress(KeyError):
                out.append((one, read(np.array([one], np.int64))[0]))
        return out


def _shown(card: ProductCard, photo: str | None) -> ProductCard:
    """The card with the photo that matched in place of the product's first one."""
    return replace(card, image_path=photo) if photo else card


def _mean(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else vectors[0]


def filter_summary(flt: Filter) -> dict[str, Any]:
    """The conditions a filter sets, for a result's JSON (the excluded products are the query's own business)."""
    names = ("category", "gender", "colour", "brand", "source", "price_min", "price_max", "available")
    return {n: getattr(flt, n) for n in names if getattr(flt, n) not in (None, [])}
