"""The product and attribute rows that complete the look turns into numpy columns."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import select

from sveta.catalog.models import Attribute, Product
from sveta.catalog.store import CatalogStore


class ProductRow(NamedTuple):
    """A product's columns that the outfit scorer reads."""

    id: int
    category: str | None
    gender: str | None
    colour: str | None
    price_min: float | None
    available: bool


class AttributeRow(NamedTuple):
    product_id: int
    name: str
    value: str
    origin: str  # seller | text | image


def outfit_rows(catalog: CatalogStore, names: Collection[str]) -> tuple[list[ProductRow], list[AttributeRow]]:
    """Every product (by id), and every attribute named in ``names`` (in the database's order), read together."""
    products = select(
        Product.id, Product.category, Product.gender, Product.colour, Product.price_min, Product.available
    )
    attributes = select(Attribute.product_id, Attribute.name, Attribute.value, Attribute.origin)
    attributes = attributes.where(Attribute.name.in_(list(names)))
    with catalog.session() as s:
        product_rows = [ProductRow(*r) for r in s.execute(products.order_by(Product.id))]
        attribute_rows = [AttributeRow(*r) for r in s.execute(attributes)]
    return product_rows, attribute_rows
