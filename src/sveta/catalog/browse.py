"""Browsing the catalog: filtered, paged product lists, one product in full, sources and crawl runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.orm import Session

from sveta.catalog.models import CrawlRun, Product, Source
from sveta.catalog.queries import ProductCard, product_cards
from sveta.catalog.store import CatalogStore
from sveta.vocab.reading import canonical


@dataclass
class ProductQuery:
    """Conditions on the product list; a list means "any of" (case-insensitive), None means "no condition"."""

    category: list[str] | None = None
    colour: list[str] | None = None
    gender: list[str] | None = None
    brand: list[str] | None = None
    source: list[str] | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = False


# Counting every match of a broad filter is O(catalog) on every page: the count stops past this many (or past the
# page asked for), and the page says the total is only "at least".
TOTAL_CAP = 10_000
# A category + gender list is read pair by pair from ix_products_category_gender_page, each in catalog order and
# only to the page's end, so a page costs the same in a small catalog and in a million products. Past this many
# (category, gender) spellings the one query is used.
MAX_PAIRS = 16


@dataclass
class ProductPage:
    total: int  # how many match; with total_capped, at least this many
    limit: int
    offset: int
    items: list[ProductCard]
    total_capped: bool = False

    def as_dict(self) -> dict[str, Any]:
        items = [c.as_dict() for c in self.items]
        page = {"total": self.total, "limit": self.limit, "offset": self.offset, "items": items}
        return page | {"total_capped": self.total_capped}


def list_products(catalog: CatalogStore, query: ProductQuery, limit: int = 50, offset: int = 0) -> ProductPage:
    """Products matching ``query`` in catalog order, one page of cards, and how many match in all (counted up to
    ``TOTAL_CAP`` or the end of the page, whichever is further; ``total_capped`` says the count stopped there)."""
    cap = max(TOTAL_CAP, offset + limit)
    with catalog.session() as s:
        total = int(s.scalar(_count_statement(query, cap)) or 0)
        ids = _page_ids(s, query, limit, offset)
    cards = product_cards(catalog, ids)
    return ProductPage(min(total, cap), limit, offset, [cards[i] for i in ids if i in cards], total > cap)


def _count_statement(query: ProductQuery, cap: int) -> Select[Any]:
    """How many products match, counted up to ``cap`` + 1 (from the page index alone: migration 0007)."""
    return select(func.count()).select_from(_where(select(Product.id), query).limit(cap + 1).subquery())


def _page_ids(s: Session, query: ProductQuery, limit: int, offset: int) -> list[int]:
    return list(s.scalars(_page_statement(query, limit, offset)))


def _page_statement(query: ProductQuery, limit: int, offset: int) -> Select[Any]:
    """One page of matching ids in catalog order; a category + gender list merges each pair's first ids."""
    categories, genders = _lowered("category", query.category), _lowered("gender", query.gender)
    if not categories or not genders or len(categories) * len(genders) > MAX_PAIRS:
        return _where(select(Product.id), query).order_by(Product.id).limit(limit).offset(offset)
    rest = _where(select(Product.id), replace(query, category=None, gender=None))
    pairs = [
        rest.where(func.lower(Product.category) == c, func.lower(Product.gender) == g)
        .order_by(Product.id)
        .limit(offset + limit)
        .subquery()
        .select()
        for c in categories
        for g in genders
    ]
    merged = union_all(*pairs).subquery()
    return select(merged.c.id).order_by(merged.c.id).limit(limit).offset(offset)


def _lowered(attribute: str, values: list[str] | None) -> list[str]:
    names = _with_names(attribute, values) or []
    return sorted({v.lower() for v in names if "\x00" not in v})


def _where(statement: Select[Any], query: ProductQuery) -> Select[Any]:
    conditions = [
        _any_of(Product.category, _with_names("category", query.category)),
        _any_of(Product.colour, _with_names("colour", query.colour)),
        _any_of(Product.gender, _with_names("gender", query.gender)),
        _any_of(Product.brand, query.brand),
    ]
    statement = statement.where(*(c for c in conditions if c is not None))
    if query.source:
        names = [s.lower() for s in query.source if "\x00" not in s]
        statement = statement.join(Source, Product.source_id == Source.id).where(func.lower(Source.name).in_(names))
    if query.min_price is not None:
        statement = statement.where(Product.price_min >= query.min_price)
    if query.max_price is not None:
        statement = statement.where(Product.price_min <= query.max_price)
    if query.in_stock:
        statement = statement.where(Product.available.is_(True))
    return statement


def _any_of(column: Any, values: list[str] | None) -> Any:
    if not values:
        return None
    # no stored value holds a NUL (ingest drops them) and PostgreSQL cannot compare one: such a value matches nothing
    return func.lower(column).in_([v.lower() for v in values if "\x00" not in v])


def _with_names(attribute: str, values: list[str] | None) -> list[str] | None:
    """The given words and their vocabulary names: "tshirts" finds the catalog's "T-Shirt", an unknown word itself."""
    if not values:
        return None
    return sorted({*values, *(canonical(attribute, v) for v in values if v.strip())})


def product_detail(catalog: CatalogStore, product_id: int) -> dict[str, Any] | None:
    """One product with its variants, images and attributes (each attribute with its origin)."""
    product = catalog.get_product(product_id)
    if product is None:
        return None
    card = product_cards(catalog, [product_id])[product_id]
    return card.as_dict() | {
        "handle": product.handle,
        "description": product.description,
        "product_type": product.product_type,
        "tags": product.tags,
        "price_max": product.price_max,
        "gone_at": product.gone_at,
        "first_seen_at": product.first_seen_at,
        "updated_at": product.updated_at,
        "variants": [_variant(v) for v in product.variants],
        "images": [_image(i) for i in product.images],
        "attributes": [_attribute(a) for a in product.attributes],
        "mismatches": attribute_mismatches([(a.name, a.value, a.origin) for a in product.attributes]),
    }


def attribute_mismatches(attributes: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Attributes whose origins (seller / text / image) state different values once normalised ("Tshirts" is
    "T-Shirt"): each with its values per origin. Two origins disagree when they share no value."""
    by_name: dict[str, dict[str, set[str]]] = {}
    for name, value, origin in attributes:
        if value:
            by_name.setdefault(name, {}).setdefault(origin, set()).add(canonical(name, value))
    found = []
    for name, origins in by_name.items():
        sets = list(origins.values())
        if any(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1 :]):
            found.append({"name": name, "values": {o: sorted(v) for o, v in sorted(origins.items())}})
    return found


def _variant(v: Any) -> dict[str, Any]:
    names = ("external_id", "title", "options", "size", "colour", "sku", "price", "compare_at_price", "available")
    return {n: getattr(v, n) for n in names} | {"position": v.position}


def _image(i: Any) -> dict[str, Any]:
    names = ("id", "url", "position", "width", "height", "alt", "status", "local_path", "error")
    return {n: getattr(i, n) for n in names}


def _attribute(a: Any) -> dict[str, Any]:
    names = ("name", "value", "origin", "confidence", "evidence", "model_version")
    return {n: getattr(a, n) for n in names}


def image_path(catalog: CatalogStore, image_id: int) -> str | None:
    """The cached file of an image, None when unknown or not downloaded."""
    from sveta.catalog.models import Image

    with catalog.session() as s:
        image = s.get(Image, image_id)
        return image.local_path if image is not None and image.status == "cached" else None


def list_sources(catalog: CatalogStore) -> list[dict[str, Any]]:
    """Every source with its product count and its latest crawl run."""
    with catalog.session() as s:
        sources = list(s.scalars(select(Source).order_by(Source.id)))
        counts = dict(s.execute(select(Product.source_id, func.count(Product.id)).group_by(Product.source_id)).all())
        newest = select(func.max(CrawlRun.id)).group_by(CrawlRun.source_id)
        latest = {r.source_id: r for r in s.scalars(select(CrawlRun).where(CrawlRun.id.in_(newest)))}
    return [source_dict(src, int(counts.get(src.id, 0)), latest.get(src.id)) for src in sources]


def get_source(catalog: CatalogStore, source_id: int) -> Source | None:
    with catalog.session() as s:
        return s.get(Source, source_id)


def find_source(catalog: CatalogStore, name: str) -> Source | None:
    if "\x00" in name:  # no source is named so, and PostgreSQL cannot compare text holding a NUL
        return None
    with catalog.session() as s:
        return s.scalar(select(Source).where(Source.name == name))


def source_dict(source: Source, products: int | None = None, last_run: CrawlRun | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "location": source.location,
        "created_at": source.created_at,
    }
    if products is not None:
        out["products"] = products
    out["last_run"] = run_dict(last_run) if last_run is not None else None
    return out


def get_run(catalog: CatalogStore, run_id: int) -> dict[str, Any] | None:
    with catalog.session() as s:
        run = s.get(CrawlRun, run_id)
        return run_dict(run, run.source.name) if run is not None else None


def list_runs(catalog: CatalogStore, source_name: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    if source_name is not None and "\x00" in source_name:
        return []  # no source is named so (PostgreSQL cannot compare a NUL)
    return [run_dict(r, r.source.name) for r in catalog.runs(source_name, limit)]


def run_dict(run: CrawlRun, source_name: str | None = None) -> dict[str, Any]:
    names = ("id", "source_id", "status", "started_at", "finished_at", "pages", "new", "changed", "unchanged", "gone")
    out = {n: getattr(run, n) for n in names} | {"errors": run.errors, "notes": run.notes}
    return out | ({"source": source_name} if source_name is not None else {})
