"""How a prepared product record is copied onto its rows: products, variants, images, attributes."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, TypeVar

from sveta.catalog.models import Attribute, Base, Image, Product, Variant, utcnow
from sveta.ingest.records import AttributeRecord, ImageRecord, VariantRecord

if TYPE_CHECKING:
    from sveta.catalog.store import PreparedProduct

T = TypeVar("T")
_MUTABLE_ORIGINS = ("seller", "text")  # image-origin attributes belong to the photo models, not to ingest


def fingerprint(prepared: PreparedProduct) -> str:
    return prepared.fingerprint or prepared.record.fingerprint()


def new_product(source_id: int, prepared: PreparedProduct) -> Product:
    product = Product(source_id=source_id, external_id=prepared.record.external_id)
    apply_record(product, prepared)
    return product


def apply_record(product: Product, prepared: PreparedProduct) -> None:
    """Copy a prepared record onto a product row, keeping cached images and photo attributes."""
    rec = prepared.record
    product_fields = {
        "handle": rec.handle,
        "title": rec.title,
        "description": rec.description,
        "brand": rec.brand,
        "product_type": rec.product_type,
        "tags": list(rec.tags),
        "currency": rec.currency,
        "url": rec.url,
        "available": rec.available,
        "source_created_at": rec.created_at,
        "source_updated_at": rec.updated_at,
        "fingerprint": fingerprint(prepared),
        "raw": rec.raw,
        "gender": prepared.gender,
        "category": prepared.category,
        "colour": prepared.colour,
        "gone_at": None,
    }
    for name, value in product_fields.items():
        _set(product, name, value)
    product.price_min, product.price_max = rec.price_range()
    now = utcnow()
    product.last_seen_at = product.updated_at = now
    _sync_variants(product, rec.variants)
    _sync_images(product, rec.images)
    _sync_attributes(product, [*rec.attributes, *prepared.text_attributes])


def _sync_variants(product: Product, records: Iterable[VariantRecord]) -> None:
    by_id = {v.external_id: v for v in product.variants}
    kept = []
    for rec in unique(records, key=lambda r: r.external_id):
        key = str(_fit(Variant, "external_id", rec.external_id))
        variant = by_id.get(key) or Variant(external_id=key)
        for name in (
            "title",
            "options",
            "size",
            "colour",
            "sku",
            "price",
            "compare_at_price",
            "available",
            "position",
        ):
            _set(variant, name, getattr(rec, name))
        kept.append(variant)
    product.variants = kept


def _sync_images(product: Product, records: Iterable[ImageRecord]) -> None:
    by_url = {i.url: i for i in product.images}
    kept = []
    for rec in unique(records, key=lambda r: r.url):
        image = by_url.get(rec.url) or Image(url=rec.url)
        image.position, image.alt, image.variant_ids = rec.position, rec.alt, list(rec.variant_ids)
        if image.status != "cached":  # the cache knows the real size; the feed's claim is a hint
            image.width, image.height = rec.width, rec.height
        kept.append(image)
    product.images = kept


def _sync_attributes(product: Product, records: Iterable[AttributeRecord]) -> None:
    # Reuse rows with the same key: deleting and re-inserting one key in a flush breaks the unique constraint.
    current: dict[tuple[str, ...], Attribute] = {(a.name, a.origin, a.value): a for a in product.attributes}
    kept = [a for a in product.attributes if a.origin not in _MUTABLE_ORIGINS]
    seen: set[tuple[str, ...]] = set()
    for rec in unique(records, key=lambda r: (r.name, r.origin, r.value)):
        key = tuple(str(_fit(Attribute, n, getattr(rec, n))) for n in ("name", "origin", "value"))
        if key in seen:  # two long values that differ only after the cut
            continue
        seen.add(key)
        attr = current.get(key) or Attribute(name=key[0], origin=key[1], value=key[2], created_at=utcnow())
        attr.confidence, attr.evidence = rec.confidence, rec.evidence
        _set(attr, "model_version", rec.model_version)
        kept.append(attr)
    product.attributes = kept


def _fit(model: type[Base], name: str, value: object) -> object:
    """Cut a string to its column's length: PostgreSQL refuses longer values where SQLite keeps them."""
    length = getattr(model.__table__.c[name].type, "length", None)
    if isinstance(value, str) and length and len(value) > length:
        return value[:length]
    return value


def _set(row: Base, name: str, value: object) -> None:
    setattr(row, name, _fit(type(row), name, value))


def unique(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    seen: dict[Hashable, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())
