"""Typed queries for learning: each product's first cached photo, its labels, and the photo-predicted attributes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import delete, insert, select

from sveta.catalog.keyword_index import refresh_keywords
from sveta.catalog.models import Attribute, Image, Product
from sveta.catalog.store import CatalogStore

DELETE_CHUNK = 500  # product ids per DELETE: under every database's limit on bound parameters


@dataclass(frozen=True, slots=True)
class CachedPhoto:
    """A product's first cached photo (by position), with the product's title."""

    product_id: int
    local_path: str
    sha256: str | None
    title: str


@dataclass(frozen=True, slots=True)
class StoredAttribute:
    """An attribute as stored: ``origin`` is seller, text or image; ``evidence`` what gave it."""

    product_id: int
    name: str
    value: str
    origin: str
    evidence: str | None = None
    confidence: float = 1.0
    model_version: str | None = None


def first_cached_photos(catalog: CatalogStore) -> list[CachedPhoto]:
    """Each product with a cached photo: its first one that has a file, in product id order."""
    query = select(Image.product_id, Image.local_path, Image.sha256, Product.title).join(Product)
    query = query.where(Image.status == "cached").order_by(Image.product_id, Image.position, Image.id)
    first: dict[int, CachedPhoto] = {}
    with catalog.session() as s:
        for pid, path, sha, title in s.execute(query):
            if path and pid not in first:
                first[pid] = CachedPhoto(pid, path, sha, title or "")
    return list(first.values())


def attributes_of(catalog: CatalogStore, origins: Collection[str], names: Collection[str]) -> list[StoredAttribute]:
    """Every stored attribute with one of ``names`` that came from one of ``origins``."""
    query = select(Attribute.product_id, Attribute.name, Attribute.value, Attribute.origin, Attribute.evidence)
    query = query.where(Attribute.origin.in_(list(origins)), Attribute.name.in_(list(names)))
    with catalog.session() as s:
        return [
            StoredAttribute(pid, name, value, origin, evidence)
            for pid, name, value, origin, evidence in s.execute(query)
        ]


def products_with_image_attributes(catalog: CatalogStore) -> set[int]:
    """The products a trained model has tagged (they have attributes of origin ``image``)."""
    query = select(Attribute.product_id).where(Attribute.origin == "image").distinct()
    with catalog.session() as s:
        return set(s.scalars(query))


def replace_image_attributes(
    catalog: CatalogStore, product_ids: Sequence[int], attributes: Sequence[StoredAttribute]
) -> None:
    """Drop the image attributes of ``product_ids`` and store ``attributes`` instead, in one transaction.

    The keyword index follows: the products' documents are rewritten in the same transaction.
    """
    rows = [asdict(a) for a in attributes]
    with catalog.session() as s:
        for start in range(0, len(product_ids), DELETE_CHUNK):
            chunk = list(product_ids[start : start + DELETE_CHUNK])
            s.execute(delete(Attribute).where(Attribute.origin == "image", Attribute.product_id.in_(chunk)))
        if rows:
            s.execute(insert(Attribute), rows)
        if catalog.keyword_index:
            refresh_keywords(s.connection(), [*product_ids, *(a.product_id for a in attributes)])
