"""Read-only catalog look-ups that search results need: product cards, photos, brands and stored attributes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, text

from sveta.catalog.models import MAX_ID, Attribute, Image, Product, Source
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
    handle: str | None = None  # a Shopify-like handle: a storefront's product links name it (the widget's)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pick(self, names: Sequence[str], **own: Any) -> dict[str, Any]:
        """The named keys in that order: a result's `own` values where given, else the card's fields."""
        if unknown := set(own) - set(names):
            raise ValueError(f"values for keys not named: {sorted(unknown)}")
        return {n: own[n] if n in own else getattr(self, n) for n in names}


_CARD_COLUMNS = (
    Product.id,
    Product.external_id,
    Source.name,
    Product.title,
    Product.brand,
    Product.category,
    Product.colour,
    Product.gender,
    Product.price_min,
    Product.currency,
    Product.available,
    Product.url,
    Product.handle,
)


def product_cards(catalog: CatalogStore, product_ids: Sequence[int], *, photos: bool = True) -> dict[int, ProductCard]:
    """Cards for the given products (one query), keyed by product id; ``photos=False`` leaves image_path None.

    Only the card's columns are read: loading whole Product rows (JSON columns, timestamps) costs 4x more.
    """
    if not product_ids:
        return {}
    query = select(*_CARD_COLUMNS).join(Source, Product.source_id == Source.id)
    with catalog.session() as s:
        rows = s.execute(query.where(Product.id.in_(list(product_ids)))).all()
        images = _first_images(s, product_ids) if photos else {}
        return {row[0]: _card(tuple(row), images.get(row[0])) for row in rows}


def resolve_product(catalog: CatalogStore, ref: str | int) -> int:
    """A product id from the source's own id (e.g. a Myntra id such as 15970), the catalog id or the handle."""
    text = str(ref).strip()
    if "\x00" in text:  # no id holds one, and PostgreSQL cannot compare text that does
        raise InputError("a product reference with a NUL character", "give a catalog id or the source's product id")
    with catalog.session() as s:
        by_external = s.scalar(select(Product.id).where(Product.external_id == text).order_by(Product.id).limit(1))
        if by_external is not None:
            return int(by_external)
        if is_row_id(text) and s.get(Product, int(text)) is not None:
            return int(text)
        by_handle = s.scalar(select(Product.id).where(Product.handle == text).order_by(Product.id).limit(1))
        if by_handle is not None:  # a storefront names its products by handle (the widget's product="...")
            return int(by_handle)
    raise InputError(
        f"no product {text[:80]!r} in the catalog", "give a catalog id, the source's own product id or its handle"
    )


def is_row_id(text: str) -> bool:
    """Whether text spells a row id: ASCII digits only, no larger than MAX_ID (a database refuses a larger one)."""
    return text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID)) and int(text) <= MAX_ID


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
        select(Image.product_id, Image.id, Image.status)
        .where(Image.product_id.in_(list(product_ids)))
        .order_by(Image.product_id, Image.position, Image.id)
    )
    first: dict[int, int] = {}
    with catalog.session() as s:
        for product_id, image_id, status in s.execute(query):
            if status == "cached":  # tested here, not in SQL: see _first_images
                first.setdefault(int(product_id), int(image_id))
    return first


def all_product_ids(catalog: CatalogStore) -> list[int]:
    """The ids of the products still in their source, in id order."""
    with catalog.session() as s:
        return [int(i) for i in s.scalars(select(Product.id).where(Product.gone_at.is_(None)).order_by(Product.id))]


# A loose index scan of ix_products_brand_gone_at: each step seeks the next brand after the last one, so the list
# costs one index look-up per distinct brand, not a pass over every product (SELECT DISTINCT reads them all).
_BRANDS = text(
    "WITH RECURSIVE b(brand) AS ("
    " SELECT min(brand) FROM products WHERE brand IS NOT NULL AND gone_at IS NULL"
    " UNION ALL"
    " SELECT (SELECT min(p.brand) FROM products AS p WHERE p.brand > b.brand AND p.gone_at IS NULL)"
    " FROM b WHERE b.brand IS NOT NULL"
    ") SELECT brand FROM b WHERE brand IS NOT NULL"
)


def brand_names(catalog: CatalogStore) -> list[str]:
    """The distinct brands of the catalog's products still in their source (the query reader's brand list)."""
    with catalog.session() as s:
        return sorted(b for b in s.scalars(_BRANDS) if b and b.strip())


def product_attributes(
    catalog: CatalogStore, product_ids: Sequence[int], names: Collection[str] | None = None
) -> dict[int, list[tuple[str, str, str, float]]]:
    """Each product's stored attributes as (name, value, origin, confidence), for ranking by what a query asks;
    only those called ``names`` when given (none: no query at all)."""
    out: dict[int, list[tuple[str, str, str, float]]] = {int(p): [] for p in product_ids}
    if not out or (names is not None and not names):
        return out
    query = select(Attribute.product_id, Attribute.name, Attribute.value, Attribute.origin, Attribute.confidence)
    query = query.where(Attribute.product_id.in_(list(out)))
    if names is not None:
        query = query.where(Attribute.name.in_(sorted(names)))
    with catalog.session() as s:
        for pid, name, value, origin, confidence in s.execute(query):
            out[pid].append((name, value, origin, float(confidence if confidence is not None else 1.0)))
    return out


def _first_images(s: Any, product_ids: Sequence[int]) -> dict[int, str]:
    # The status is tested in Python: with `status = 'cached'` in the WHERE, SQLite (no ANALYZE statistics) picks
    # ix_images_status, which every cached photo matches, and scans the whole images table (~25 ms at 100k photos)
    # instead of looking the few products up by ix_images_product_id.
    query = (
        select(Image.product_id, Image.local_path, Image.status)
        .where(Image.product_id.in_(list(product_ids)))
        .order_by(Image.product_id, Image.position, Image.id)
    )
    first: dict[int, str] = {}
    for product_id, path, status in s.execute(query):
        if status == "cached":
            first.setdefault(product_id, path)
    return first


def _card(row: tuple[Any, ...], image_path: str | None) -> ProductCard:
    """A card from a row of _CARD_COLUMNS (in the dataclass's field order, the handle last)."""
    pid, external_id, source, title, brand, category, colour, gender, price, currency, available, url, handle = row
    return ProductCard(
        pid, external_id, source, title, brand, category, colour, gender, price, currency, available, url, image_path,
        handle,
    )  # fmt: skip
