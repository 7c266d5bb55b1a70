"""Read-only catalog look-ups that search results need: product cards, photos, brands and stored attributes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from sveta.catalog.models import Attribute, Image, Product, Source
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


def image_paths(catalog: CatalogStore, image_ids: Sequence[int]) -> dict[int, str]:
    """The cached file of each image id that has one (a result shows the photo that matched)."""
    if not image_ids:
        return {}
    query = select(Image.id, Image.local_path).where(Image.id.in_(list(image_ids)), Image.status == "cached")
    with catalog.session() as s:
        return {int(i): path for i, path in s.execute(query) if path}


def first_image_ids(catalog: CatalogStore, product_ids: Sequence[int]) -> dict[int, int]:
    """Each product's first cached photo id (by position), for a result that no photo matched."""
    if not product_ids:
        return {}
    query = (
        select(Image.product_id, Image.id)
        .where(Image.product_id.in_(list(product_ids)), Image.status == "cached")
        .order_by(Image.product_id, Image.position, Image.id)
    )
    first: dict[int, int] = {}
    with catalog.session() as s:
        for product_id, image_id in s.execute(query):
            first.setdefault(int(product_id), int(image_id))
    return first


def all_product_ids(catalog: CatalogStore) -> list[int]:
    """The ids of the products still in their source, in id order."""
    with catalog.session() as s:
        return [int(i) for i in s.scalars(select(Product.id).where(Product.gone_at.is_(None)).order_by(Product.id))]


def brand_names(catalog: CatalogStore) -> list[str]:
    """The distinct brands of the catalog's products (the query reader's brand list)."""
    query = select(Product.brand).where(Product.brand.is_not(None), Product.gone_at.is_(None)).distinct()
    with catalog.session() as s:
        return sorted(b for b in s.scalars(query) if b and b.strip())


def product_attributes(
    catalog: CatalogStore, product_ids: Sequence[int]
) -> dict[int, list[tuple[str, str, str, float]]]:
    """Each product's stored attributes as (name, value, origin, confidence), for ranking by what a query asks."""
    out: dict[int, list[tuple[str, str, str, float]]] = {int(p): [] for p in product_ids}
    if not out:
        return out
    query = select(Attribute.product_id, Attribute.name, Attribute.value, Attribute.origin, Attribute.confidence)
    with catalog.session() as s:
        for pid, name, value, origin, confidence in s.execute(query.where(Attribute.product_id.in_(list(out)))):
            out[pid].append((name, value, origin, float(confidence if confidence is not None else 1.0)))
    return out


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
