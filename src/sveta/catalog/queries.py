"""Read-only catalog look-ups that search results need: product cards and a product's indexed photos."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from sveta.catalog.models import Image, Product, Source
from sveta.catalog.store import CatalogStore
from sveta.errors import InputError


@dataclass(slots=True)
class ProductCard:
    """What a result shows about a product."""

    product_id: int
    source_id: str  # the source's own id (a Myntra id, a Shopify id)
    source: str
    title: str
    brand: str | None
    category: str | None
    colour: str | None
    gender: str | None
    price: float | None
    currency: str | None
    available: bool
    url: str | None
    image_path: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pick(self, names: Sequence[str], **own: Any) -> dict[str, Any]:
        """The named keys in that order: a result's `own` values where given, else the card's fields."""
        if unknown := set(own) - set(names):
            raise ValueError(f"values for keys not named: {sorted(unknown)}")
        return {n: own[n] if n in own else getattr(self, n) for n in names}


def product_cards(catalog: CatalogStore, product_ids: Sequence[int]) -> dict[int, ProductCard]:
    """Cards for the given products (one query), keyed by product id."""
    if not product_ids:
        return {}
    query = (
        select(Product, Source.name)
        .join(Source, Product.source_id == Source.id)
        .where(Product.id.in_(list(product_ids)))
    )
    with catalog.session() as s:
        rows = s.execute(query).all()
        images = _first_images(s, product_ids)
        return {p.id: _card(p, source, images.get(p.id)) for p, source in rows}


def resolve_product(catalog: CatalogStore, ref: str | int) -> int:
    """A product id from the catalog id or the source's own id (e.g. a Myntra id such as 15970)."""
    text = str(ref).strip()
    with catalog.session() as s:
        by_external = s.scalar(select(Product.id).where(Product.external_id == text).order_by(Product.id).limit(1))
        if by_external is not None:
            return int(by_external)
        if text.isdigit() and s.get(Product, int(text)) is not None:
            return int(text)
    raise InputError(f"no product {text!r} in the catalog", "give a catalog id or the source's own product id")


def product_image_ids(catalog: CatalogStore, product_id: int) -> list[int]:
    with catalog.session() as s:
        query = select(Image.id).where(Image.product_id == product_id).order_by(Image.position, Image.id)
        return list(s.scalars(query))


def _first_images(s: Any, product_ids: Sequence[int]) -> dict[int, str]:
    query = (
        select(Image.product_id, Image.local_path)
        .where(Image.product_id.in_(list(product_ids)), Image.status == "cached")
        .order_by(Image.product_id, Image.position, Image.id)
    )
    first: dict[int, str] = {}
    for product_id, path in s.execute(query):
        first.setdefault(product_id, path)
    return first


def _card(p: Product, source: str, image_path: str | None) -> ProductCard:
    return ProductCard(
        product_id=p.id,
        source_id=p.external_id,
        source=source,
        title=p.title,
        brand=p.brand,
        category=p.category,
        colour=p.colour,
        gender=p.gender,
        price=p.price_min,
        currency=p.currency,
        available=p.available,
        url=p.url,
        image_path=image_path,
    )
