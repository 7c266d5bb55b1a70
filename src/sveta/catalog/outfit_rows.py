"""The product and attribute rows that complete the look turns into numpy columns, read in batches."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from sqlalchemy import Executable, select
from sqlalchemy.orm import Session

from sveta.catalog.models import Attribute, Product
from sveta.catalog.store import CatalogStore

BATCH = 50_000  # rows a batch: a million products' rows held at once had made a serving process 2.7 GB larger


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


@dataclass(frozen=True, slots=True)
class OutfitRows:
    """Every product (by id), then every attribute named (in the database's order), a batch at a time; both from
    one transaction, so they agree. Read the products first."""

    products: Iterator[list[ProductRow]]
    attributes: Iterator[list[AttributeRow]]


@contextmanager
def outfit_rows(catalog: CatalogStore, names: Collection[str], batch: int | None = None) -> Iterator[OutfitRows]:
    """The rows, streamed while the block runs, ``batch`` (default ``BATCH``) at a time, never all at once."""
    size = batch or BATCH
    products = select(
        Product.id, Product.category, Product.gender, Product.colour, Product.price_min, Product.available
    ).order_by(Product.id)
    attributes = select(Attribute.product_id, Attribute.name, Attribute.value, Attribute.origin)
    attributes = attributes.where(Attribute.name.in_(list(names)))
    with catalog.session() as s:
        yield OutfitRows(_batches(s, products, ProductRow, size), _batches(s, attributes, AttributeRow, size))


_Row = TypeVar("_Row", ProductRow, AttributeRow)


def _batches(session: Session, statement: Executable, row: type[_Row], size: int) -> Iterator[list[_Row]]:
    for part in session.execute(statement.execution_options(yield_per=size)).partitions():
        yield [row(*r) for r in part]
