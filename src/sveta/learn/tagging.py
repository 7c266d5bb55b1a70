"""Tagging photos with the trained attribute model: a file, an http(s) URL or a catalog product."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta.embed.pipeline import prepare_photo
from sveta.errors import InputError
from sveta.learn.features import FeatureExtractor, Features
from sveta.learn.heads import Prediction

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.settings import Settings


def photo_features(sources: Sequence[Path | bytes], settings: Settings) -> Features:
    """Features of photos given as files or bytes (not cached: they are the user's, not the catalog's)."""
    extractor = FeatureExtractor(settings)
    return Features.from_matrix(extractor.embed_prepared([prepare_photo(extractor, s, settings) for s in sources]))


def tag_photos(
    sources: Sequence[Path | bytes], settings: Settings, name: str = "catalog"
) -> list[dict[str, Prediction]]:
    from sveta.learn.catalog import load_model

    model = load_model(settings, name)
    return model.predict(photo_features(sources, settings), settings.tag_min_confidence)


def tag_query(
    query: str, settings: Settings, catalog: Callable[[], CatalogStore], name: str = "catalog"
) -> dict[str, Any]:
    """``sveta tag``'s answer for a photo path, an http(s) URL (fetched through the SSRF guard) or a product id."""
    from sveta.learn.catalog import load_model

    model = load_model(settings, name)
    source = _resolve(query, settings, catalog)
    row = model.predict(photo_features([source], settings), settings.tag_min_confidence)[0]
    return {
        "query": query,
        "photo": str(source),
        "model": f"tuned:{name}@{model.card.get('model_id', '')}",
        "attributes": {a: p.as_dict() for a, p in row.items()},
    }


def _resolve(query: str, settings: Settings, catalog: Callable[[], CatalogStore]) -> Path:
    if query.startswith(("http://", "https://")):
        from sveta.images.cache import ImageCache

        with ImageCache(settings) as cache:
            return Path(cache.fetch(query).path)
    if Path(query).is_file():
        return Path(query)
    from sveta.catalog.queries import product_cards, resolve_product

    try:
        product_id = resolve_product(catalog(), query)
    except InputError:
        raise InputError(
            f"{query!r} is neither a photo file, an http(s) URL nor a catalog product",
            "give a path to a JPEG/PNG/WEBP photo, a URL, or a product id from `sveta search --json`",
        ) from None
    card = product_cards(catalog(), [product_id]).get(product_id)
    if card is None or not card.image_path:
        raise InputError(f"product {query} has no downloaded photo", "run `sveta images fetch` first")
    return Path(card.image_path)
