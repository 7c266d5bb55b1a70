"""The rows the enrichment export writes: each product's ids, handle, tags and stored attributes, filtered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, false, func, or_, select

from sveta.catalog.models import Attribute, Product, Source
from sveta.catalog.store import CatalogStore

_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class ExportAttribute:
    """One stored attribute value: ``origin`` is seller, text or image, as the catalog keeps it."""

    name: str
    value: str
    origin: str
    confidence: float
    model_version: str | None = None


@dataclass(slots=True)
class ExportRow:
    """One product as the export sees it; ``updated_at`` is its row's or its newest attribute's time."""

    product_id: int
    source: str
    external_id: str
    handle: str | None
    title: str
    tags: list[str]
    updated_at: datetime
    attributes: list[ExportAttribute] = field(default_factory=list)


def source_names(catalog: CatalogStore) -> list[str]:
    """Every registered source's name, in registration order."""
    with catalog.session() as s:
        return list(s.scalars(select(Source.name).order_by(Source.id)))


def export_rows(
    catalog: CatalogStore,
    *,
    source: str | None = None,
    changed_since: datetime | None = None,
    include_gone: bool = False,
) -> list[ExportRow]:
    """Products of ``source`` (all when None) changed at or after ``changed_since``, in id order, with their
    attributes. A product changes when its row does (an ingest) or when it gains attributes (tagging rewrites a
    product's photo attributes without touching its row). Gone products are left out unless asked for."""
    products = _where(
        select(Product.id, Source.name, Product.external_id, Product.handle, Product.title, Product.tags,
               Product.updated_at).join(Source, Product.source_id == Source.id),
        source, changed_since, include_gone,
    )  # fmt: skip
    attributes = _where(
        select(Attribute.product_id, Attribute.name, Attribute.value, Attribute.origin, Attribute.confidence,
               Attribute.model_version, Attribute.created_at)
        .join(Product, Attribute.product_id == Product.id).join(Source, Product.source_id == Source.id),
        source, changed_since, include_gone,
    )  # fmt: skip
    with catalog.session() as s:
        rows = {
            pid: ExportRow(pid, name, external, handle, title or "", list(tags or []), updated)
            for pid, name, external, handle, title, tags, updated in s.execute(products.order_by(Product.id))
        }
        for pid, name, value, origin, confidence, version, created in s.execute(
            attributes.order_by(Attribute.product_id, Attribute.id)
        ):
            row = rows[pid]
            row.attributes.append(ExportAttribute(name, value, origin, float(confidence), version))
            if created is not None and created > row.updated_at:
                row.updated_at = created
    return list(rows.values())


def _where(statement: _S, source: str | None, changed_since: datetime | None, include_gone: bool) -> _S:
    if source is not None:
        # no source is named with a NUL (PostgreSQL cannot compare one): such a name matches nothing
        name = func.lower(Source.name) == source.lower()
        statement = statement.where(name if "\x00" not in source else false())
    if not include_gone:
        statement = statement.where(Product.gone_at.is_(None))
    if changed_since is not None:
        touched = select(Attribute.product_id).where(Attribute.created_at >= changed_since)
        statement = statement.where(or_(Product.updated_at >= changed_since, Product.id.in_(touched)))
    return statement
