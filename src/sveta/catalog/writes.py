"""How prepared product records become rows: bulk inserts for new products, in-place sync for changed ones."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.orm import Session

from sveta.catalog.models import Attribute, Base, Image, Product, Variant, utcnow
from sveta.catalog.records import AttributeRecord, ImageRecord, VariantRecord

if TYPE_CHECKING:
    from sveta.catalog.store import PreparedProduct

T = TypeVar("T")
_MUTABLE_ORIGINS = ("seller", "text")  # image-origin attributes belong to the photo models, not to ingest
_VARIANT_FIELDS = ("title", "options", "size", "colour", "sku", "price", "compare_at_price", "available", "position")


def fingerprint(prepared: PreparedProduct) -> str:
    return prepared.fingerprint or prepared.record.fingerprint()


def insert_new(s: Session, source_id: int, batch: Sequence[PreparedProduct]) -> list[int]:
    """Insert new products and their children with one multi-row statement per table; the new products' ids."""
    if not batch:
        return []
    rows = [{"source_id": source_id, "external_id": p.record.external_id, **product_values(p)} for p in batch]
    statement = insert(Product).returning(Product.id, sort_by_parameter_order=True)
    ids = [row.id for row in s.execute(statement, [_fitted(Product, r) for r in rows])]
    variants, images, attributes = [], [], []
    for product_id, prepared in zip(ids, batch, strict=True):
        rec = prepared.record
        variants += [{"product_id": product_id, **variant_values(v)} for v in _unique_variants(rec.variants)]
        images += [{"product_id": product_id, **image_values(i)} for i in unique(rec.images, key=lambda r: r.url)]
        attributes += [{"product_id": product_id, **a} for a in _attribute_rows(_all_attributes(prepared))]
    for model, values in ((Variant, variants), (Image, images), (Attribute, attributes)):
        if values:
            s.execute(insert(model), values)
    return ids


def apply_record(product: Product, prepared: PreparedProduct) -> None:
    """Copy a changed record onto its product row, keeping cached images and photo attributes."""
    for name, value in _fitted(Product, product_values(prepared)).items():
        setattr(product, name, value)
    _sync_variants(product, prepared.record.variants)
    _sync_images(product, prepared.record.images)
    _sync_attributes(product, _all_attributes(prepared))


def product_values(prepared: PreparedProduct) -> dict[str, Any]:
    rec, now = prepared.record, utcnow()
    price_min, price_max = rec.price_range()
    return {
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
        "price_min": price_min,
        "price_max": price_max,
        "last_seen_at": now,
        "updated_at": now,
    }


def variant_values(rec: VariantRecord) -> dict[str, Any]:
    return _fitted(Variant, {"external_id": rec.external_id, **{f: getattr(rec, f) for f in _VARIANT_FIELDS}})


def image_values(rec: ImageRecord) -> dict[str, Any]:
    return {
        "url": rec.url,
        "position": rec.position,
        "alt": rec.alt,
        "variant_ids": list(rec.variant_ids),
        "width": rec.width,
        "height": rec.height,
    }


def _sync_variants(product: Product, records: Iterable[VariantRecord]) -> None:
    by_id = {v.external_id: v for v in product.variants}
    kept = []
    for rec in _unique_variants(records):
        values = variant_values(rec)
        variant = by_id.get(values["external_id"]) or Variant()
        for name, value in values.items():
            setattr(variant, name, value)
        kept.append(variant)
    product.variants = kept


def _sync_images(product: Product, records: Iterable[ImageRecord]) -> None:
    by_url = {i.url: i for i in product.images}
    kept = []
    for rec in unique(records, key=lambda r: r.url):
        image = by_url.get(rec.url) or Image(url=rec.url)
        values = image_values(rec)
        if image.status == "cached":  # the cache knows the real size; the feed's claim is only a hint
            values.pop("width"), values.pop("height")
        for name, value in values.items():
            setattr(image, name, value)
        kept.append(image)
    product.images = kept


def _sync_attributes(product: Product, records: Iterable[AttributeRecord]) -> None:
    # Reuse rows with the same key: deleting and re-inserting one key in a flush breaks the unique constraint.
    current = {(a.name, a.origin, a.value): a for a in product.attributes}
    kept = [a for a in product.attributes if a.origin not in _MUTABLE_ORIGINS]
    for values in _attribute_rows(records):
        attr = current.get((values["name"], values["origin"], values["value"])) or Attribute(created_at=utcnow())
        for name, value in values.items():
            setattr(attr, name, value)
        kept.append(attr)
    product.attributes = kept


def _all_attributes(prepared: PreparedProduct) -> list[AttributeRecord]:
    return [*prepared.record.attributes, *prepared.text_attributes]


def _attribute_rows(records: Iterable[AttributeRecord]) -> list[dict[str, Any]]:
    """Fitted attribute values, one per (name, origin, value) key after fitting."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in records:
        values = _fitted(
            Attribute,
            {
                "name": rec.name,
                "origin": rec.origin,
                "value": rec.value,
                "confidence": rec.confidence,
                "evidence": rec.evidence,
                "model_version": rec.model_version,
            },
        )
        rows.setdefault((values["name"], values["origin"], values["value"]), values)
    return list(rows.values())


def _unique_variants(records: Iterable[VariantRecord]) -> list[VariantRecord]:
    return unique(records, key=lambda r: str(_fit(Variant, "external_id", r.external_id)))


def _fitted(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    return {name: _fit(model, name, value) for name, value in values.items()}


def _fit(model: type[Base], name: str, value: object) -> object:
    """Cut a string to its column's length: PostgreSQL refuses longer values where SQLite keeps them."""
    length = getattr(model.__table__.c[name].type, "length", None)
    if isinstance(value, str) and length and len(value) > length:
        return value[:length]
    return value


def unique(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    seen: dict[Hashable, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())
