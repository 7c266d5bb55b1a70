"""Typed queries for learning: each product's first cached photo, its labels, and the photo-predicted attributes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from sveta.catalog.keyword_index import refresh_keywords
from sveta.catalog.models import Attribute, Image, Product
from sveta.catalog.store import CatalogStore

CHUNK = 500  # products per transaction (and per DELETE: under every database's limit on bound parameters)


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
    """Drop the image attributes of ``product_ids`` and store ``attributes`` instead, ``CHUNK`` products per
    transaction: each product's photo attributes change at once, and tagging a whole catalog never holds the
    write lock for long. The keyword index follows: each chunk's documents are rewritten in its transaction.
    """
    rows: dict[int, list[dict[str, Any]]] = {}
    for attribute in attributes:
        rows.setdefault(attribute.product_id, []).append(asdict(attribute))
    ids = sorted({*product_ids, *rows})
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        catalog.write(partial(_replace, chunk, [r for pid in chunk for r in rows.get(pid, [])], catalog.keyword_index))


def _replace(chunk: list[int], rows: list[dict[str, Any]], keywords: bool, s: Session) -> None:
    # PostgreSQL: lock the products, in id order, so that two writers of their attributes take turns.
    s.execute(select(Product.id).where(Product.id.in_(chunk)).order_by(Product.id).with_for_update())
    s.execute(delete(Attribute).where(Attribute.origin == "image", Attribute.product_id.in_(chunk)))
    if rows:
        s.execute(insert(Attribute), rows)
    if keywords:
        refresh_keywords(s.connection(), chunk)
