"""Tagging photos with the trained attribute model: a file, an http(s) URL or a catalog product."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta.catalog.attributes import StoredAttribute, replace_image_attributes
from sveta.embed.pipeline import prepare_photo
from sveta.errors import ConfigError, InputError
from sveta.learn.features import Backbone, FeatureExtractor, Features, features_of
from sveta.learn.heads import UNKNOWN, AttributeModel, Prediction
from sveta.learn.store import DEFAULT_NAME, ModelCache, has_model

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.learn.labels import Example
    from sveta.progress import StageProgress
    from sveta.settings import Settings


def photo_features(sources: Sequence[Path | bytes], settings: Settings, backbone: Backbone | None = None) -> Features:
    """Features of photos given as files or bytes (not cached: they are the user's, not the catalog's).

    ``backbone``: the fine-tuned network of the model the features are for (its ``backbone``).
    """
    extractor = FeatureExtractor(settings, backbone=backbone)
    return Features.from_matrix(extractor.embed_prepared([prepare_photo(extractor, s, settings) for s in sources]))


def tag_photos(
    sources: Sequence[Path | bytes],
    settings: Settings,
    name: str = DEFAULT_NAME,
    models: ModelCache | None = None,
) -> list[dict[str, Prediction]]:
    """Each photo's attributes by the trained model ``name`` (kept in ``models`` when the caller has a cache)."""
    model = (models or ModelCache()).get(settings, name)
    return model.predict(photo_features(sources, settings, model.backbone), settings.tag_min_confidence)


def tag_query(
    query: str,
    settings: Settings,
    catalog: Callable[[], CatalogStore],
    name: str = DEFAULT_NAME,
    zero_shot: str | None = None,
    models: ModelCache | None = None,
) -> dict[str, Any]:
    """``sveta tag``'s answer for a photo path, an http(s) URL (fetched through the SSRF guard) or a product id."""
    source = _resolve(query, settings, catalog)
    if zero_shot is not None or not has_model(settings, name):
        return _zero_shot(query, source, settings, zero_shot)
    model = (models or ModelCache()).get(settings, name)
    row = model.predict(photo_features([source], settings, model.backbone), settings.tag_min_confidence)[0]
    return {
        "query": query,
        "photo": str(source),
        "model": f"tuned:{name}@{model.card.get('model_id', '')}",
        "attributes": {a: p.as_dict() for a, p in row.items()},
    }


def _zero_shot(query: str, source: Path, settings: Settings, spec: str | None) -> dict[str, Any]:
    """Without a trained model (or on request), a CLIP embedder's text prompts tag the photo."""
    from sveta.embed.base import get_embedder
    from sveta.index.catalog_index import catalog_embedder_spec
    from sveta.learn.zero_shot import ZeroShotTagger

    spec = spec or catalog_embedder_spec(settings)
    embedder = get_embedder(spec, settings)
    if not hasattr(embedder, "embed_texts") or spec.startswith("tuned"):
        raise ConfigError(
            f"no trained model, and the embedder {spec} cannot tag zero-shot",
            "train one (sveta train), or give a CLIP embedder: sveta tag PHOTO --zero-shot hf-hub:ORG/NAME",
        )
    vector = embedder.embed_prepared([prepare_photo(embedder, source, settings)])
    row = ZeroShotTagger(embedder).predict(vector, settings.tag_min_confidence)[0]
    return {
        "query": query,
        "photo": str(source),
        "model": f"zero-shot:{spec}",
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


def tag_products(
    catalog: CatalogStore,
    model: AttributeModel,
    examples: list[Example],
    settings: Settings,
    on_progress: StageProgress | None = None,
) -> int:
    """Store each product's photo-predicted attributes (origin ``image``, with the model version)."""
    ids, features = features_of(examples, settings, False, on_progress, model.backbone)
    predictions = model.predict(features, settings.tag_min_confidence)
    version = f"tuned:{model.card.get('name', DEFAULT_NAME)}@{model.card.get('model_id', '')}"
    attributes = [
        StoredAttribute(pid, attribute, p.value, "image", json.dumps(p.alternatives), p.confidence, version)
        for pid, row in zip(ids, predictions, strict=True)
        for attribute, p in row.items()
        if p.value != UNKNOWN
    ]
    replace_image_attributes(catalog, ids, attributes)
    return len(ids)
