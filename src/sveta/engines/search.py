"""The facade the CLI and API call: search by photo or URL, similar to a product, with filters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sveta.catalog.queries import ProductCard, product_cards, product_image_ids, resolve_product
from sveta.catalog.store import CatalogStore
from sveta.embed.base import ImageEmbedder, get_embedder
from sveta.embed.pipeline import prepare_photo
from sveta.errors import ConfigError, InputError
from sveta.index.base import Filter, Hit, VectorIndex
from sveta.settings import Settings
from sveta.vocab.reading import canonical

VOTERS = 20  # neighbours that vote for a category (search's --category auto, look's bottoms)
VOTE_TEMPERATURE = 0.05  # softmax over scores: a near-duplicate outvotes many so-so neighbours


@dataclass
class Match:
    card: ProductCard
    score: float
    image_id: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.card.as_dict(), "score": round(self.score, 4), "image_id": self.image_id}


@dataclass
class SearchResult:
    query: str
    matches: list[Match]
    category: str | None = None  # the category filter used (given, or predicted with "auto")
    predicted: bool = False
    filters: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "category": self.category,
            "category_predicted": self.predicted,
            "filters": self.filters,
            "matches": [m.as_dict() for m in self.matches],
        }


class Searcher:
    """Holds the catalog, the embedder and the index; both model and index load on first use."""

    def __init__(self, settings: Settings, catalog: CatalogStore) -> None:
        self.settings, self.catalog = settings, catalog
        self._index: VectorIndex | None = None
        self._embedder: ImageEmbedder | None = None

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
        self, source: str | Path | bytes, k: int = 10, flt: Filter | None = None, category: str | None = "auto"
    ) -> SearchResult:
        label = source if isinstance(source, str | Path) else "uploaded photo"
        return self.search_vector(self.embed_photo(source), str(label), k, flt, category)

    def search_text(
        self, text: str, k: int = 10, flt: Filter | None = None, category: str | None = None
    ) -> SearchResult:
        """Photos that match a description: the tuned model's text map, or a CLIP embedder's text tower."""
        embed_texts = getattr(self.embedder, "embed_texts", None)
        if embed_texts is None:
            raise ConfigError(
                f"the index's embedder {self.embedder.spec} cannot embed text",
                "train on the catalog (sveta train), which indexes with a text map, or use a CLIP embedder",
            )
        if not text.strip():
            raise InputError("the text query is empty", 'describe the item, e.g. --text "navy blue formal shirt"')
        return self.search_vector(embed_texts([text])[0], f"text: {text}", k, flt, category)

    def similar(
        self, product: str | int, k: int = 10, flt: Filter | None = None, category: str | None = None
    ) -> SearchResult:
        """Products that look like a catalog product (the product itself excluded)."""
        product_id = resolve_product(self.catalog, product)
        indexed = [i for i in product_image_ids(self.catalog, product_id) if i in set(self.index.ids().tolist())]
        if not indexed:
            raise InputError(f"product {product} has no indexed photo", "run `sveta index update` first")
        flt = flt or Filter()
        flt = replace(flt, exclude_products=[*flt.exclude_products, product_id])  # a copy: the caller's stays
        vector = self.index.vectors(np.array(indexed[:1], dtype=np.int64))[0]
        return self.search_vector(vector, f"product {product}", k, flt, category)

    def search_vector(
        self, vector: np.ndarray, label: str, k: int, flt: Filter | None, category: str | None
    ) -> SearchResult:
        flt = replace(flt) if flt else Filter()  # a copy: the caller's filter stays as given
        predicted = category == "auto"
        if predicted:
            category = self.predict_category(vector, flt)
        if category:
            flt.category = [canonical("category", category)]
        hits = self.index.search(vector[None, :], k, flt)[0]
        return SearchResult(label, self._matches(hits), category, predicted, filter_summary(flt))

    def predict_category(self, vector: np.ndarray, flt: Filter | None = None) -> str | None:
        """The category most of the nearest neighbours share (score-weighted), as the seeds did with kNN."""
        votes = self.category_votes(vector, Filter(exclude_products=list(flt.exclude_products) if flt else []))
        return max(votes, key=lambda c: votes[c]) if votes else None

    def category_votes(self, vector: np.ndarray, voters: Filter) -> dict[str, float]:
        """The categories of the VOTERS nearest products under `voters`, each with its softmax-weighted vote."""
        hits = self.index.search(vector[None, :], VOTERS, voters)[0]
        cards = product_cards(self.catalog, [h.product_id for h in hits])
        votes: dict[str, float] = {}
        for hit in hits:
            card = cards.get(hit.product_id)
            if card and card.category:
                weight = float(np.exp((hit.score - hits[0].score) / VOTE_TEMPERATURE))
                votes[card.category] = votes.get(card.category, 0.0) + weight
        return votes

    def _matches(self, hits: list[Hit]) -> list[Match]:
        cards = product_cards(self.catalog, [h.product_id for h in hits])
        return [Match(cards[h.product_id], h.score, h.id) for h in hits if h.product_id in cards]


def filter_summary(flt: Filter) -> dict[str, Any]:
    """The conditions a filter sets, for a result's JSON (the excluded products are the query's own business)."""
    names = ("category", "gender", "colour", "brand", "source", "price_min", "price_max", "available")
    return {n: getattr(flt, n) for n in names if getattr(flt, n) not in (None, [])}
