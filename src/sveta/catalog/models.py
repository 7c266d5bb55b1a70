"""SQLAlchemy tables: sources, products, variants, images, attributes, crawl runs, insights, rules, pushes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so Alembic migrations work the same on SQLite (batch mode) and Postgres.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The largest row id every catalog database holds: the id columns are PostgreSQL INTEGERs (32-bit; a larger
# number is an error there) and SQLite INTEGERs (64-bit; a larger one overflows). Ids are assigned from 1 up.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that reads back aware on every database: SQLite drops the zone that PostgreSQL keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: UTCDateTime(),
    }


class Source(Base):
    """A place products come from: a Shopify store, a feed file, a folder."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # shopify | csv | jsonl | folder
    location: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id", name="uq_products_source_external"),
        # Migration 0004: product references, the brand list, the stats cache key and the product list's
        # case-insensitive filters use these instead of scanning the table.
        Index("ix_products_external_id", "external_id"),
        Index("ix_products_handle", "handle"),
        Index("ix_products_brand_gone_at", "brand", "gone_at"),
        Index("ix_products_updated_at", "updated_at"),
        Index(
            "ix_products_category_gender_page",
            *(text("lower(category)"), text("lower(gender)"), "id", "available", "price_min"),
            # migration 0007: PostgreSQL counts a page's matches from the index alone only when the columns
            # inside its lower(...) are in it too (its planner does not see that lower(category) is enough)
            postgresql_include=["category", "gender"],
        ),
        # migration 0008: a re-sync's stored fingerprints and a source's live products, read from the index alone
        Index(
            "ix_products_source_sync",
            *("source_id", "external_id", "fingerprint"),
            postgresql_include=["id"],
            postgresql_where=text("gone_at IS NULL"),
            sqlite_where=text("gone_at IS NULL"),
        ),
        Index("ix_products_lower_colour", text("lower(colour)")),
        Index("ix_products_lower_brand", text("lower(brand)")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))  # uq_products_source_external leads with it
    external_id: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str | None] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    brand: Mapped[str | None] = mapped_column(String(255))
    product_type: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list[str]] = mapped_column(default=list)
    gender: Mapped[str | None] = mapped_column(String(32), index=True)
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    colour: Mapped[str | None] = mapped_column(String(64), index=True)
    price_min: Mapped[float | None] = mapped_column(Float)
    price_max: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(8))
    url: Mapped[str | None] = mapped_column(Text)
    available: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    gone_at: Mapped[datetime | None] = mapped_column()  # set when the product vanished from its source
    source_created_at: Mapped[datetime | None] = mapped_column()
    source_updated_at: Mapped[datetime | None] = mapped_column()
    fingerprint: Mapped[str] = mapped_column(String(128))  # decides "changed" on the next ingest
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)

    source: Mapped[Source] = relationship()
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Variant.position"
    )
    images: Mapped[list[Image]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Image.position"
    )
    attributes: Mapped[list[Attribute]] = relationship(back_populates="product", cascade="all, delete-orphan")


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("product_id", "external_id", name="uq_variants_product_external"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(512))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    size: Mapped[str | None] = mapped_column(String(64))
    colour: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(255))
    price: Mapped[float | None] = mapped_column(Float)
    compare_at_price: Mapped[float | None] = mapped_column(Float)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship(back_populates="variants")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("product_id", "url", name="uq_images_product_url"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    alt: Mapped[str | None] = mapped_column(Text)
    variant_ids: Mapped[list[str]] = mapped_column(default=list)  # external ids of the variants it shows
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | cached | broken
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    local_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime | None] = mapped_column(index=True)  # when its status last changed (stats key)

    product: Mapped[Product] = relationship(back_populates="images")


class Attribute(Base):
    __tablename__ = "attributes"
    __table_args__ = (
        UniqueConstraint("product_id", "name", "origin", "value", name="uq_attributes_product_name_origin_value"),
        Index("ix_attributes_name_value", "name", "value"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(16))  # seller | text | image
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    evidence: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[Product] = relationship(back_populates="attributes")


class CrawlRun(Base):
    """One ingest of one source: what it read and what it changed."""

    __tablename__ = "crawl_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | failed | interrupted
    pages: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    gone: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[str]] = mapped_column(default=list)
    notes: Mapped[list[str]] = mapped_column(default=list)
    host: Mapped[str | None] = mapped_column(String(255))  # who runs it: a live run of the source blocks another
    pid: Mapped[int | None] = mapped_column(Integer)

    source: Mapped[Source] = relationship()


class SearchEvent(Base):
    """One search a shopper or a client made (no address, no user id): what was asked, understood and found."""

    __tablename__ = "search_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # text | photo | url | similar | complete
    surface: Mapped[str] = mapped_column(String(32))  # api | web | widget-similar | widget-complete | widget-photo
    query: Mapped[str | None] = mapped_column(Text)  # the words, or the product a similar / complete started from
    understood: Mapped[dict[str, Any]] = mapped_column(default=dict)
    results: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    page: Mapped[str | None] = mapped_column(Text)  # the storefront page's origin and path, never its query string


class ClickEvent(Base):
    """A shopper opened a result (from the widget or the web page), tied to the search that showed it."""

    __tablename__ = "click_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    search_id: Mapped[int | None] = mapped_column(Integer, index=True)  # no foreign key: retention deletes either
    product_id: Mapped[int | None] = mapped_column(Integer)
    surface: Mapped[str] = mapped_column(String(32))
    position: Mapped[int | None] = mapped_column(Integer)
    page: Mapped[str | None] = mapped_column(Text)


class MerchRule(Base):
    """A merchandising rule: pin, boost, bury or hide a product, brand or category, for a query, a category or
    everywhere, between two optional dates."""

    __tablename__ = "merch_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(8))  # pin | boost | bury | hide
    target_kind: Mapped[str] = mapped_column(String(16))  # product | brand | category
    target: Mapped[str] = mapped_column(String(512))  # a product reference, a brand or a category name
    scope_kind: Mapped[str] = mapped_column(String(16))  # query | category | everywhere
    scope: Mapped[str | None] = mapped_column(String(512))  # the query's words or the category; None everywhere
    position: Mapped[int | None] = mapped_column(Integer)  # pin: the 1-based place in the results
    weight: Mapped[float | None] = mapped_column(Float)  # boost / bury: how far it moves
    starts_at: Mapped[datetime | None] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShopifyPush(Base):
    """One metafield value written to a Shopify store by `sveta shopify push --apply`: a rerun skips what is here."""

    __tablename__ = "shopify_pushes"
    __table_args__ = (UniqueConstraint("store", "product_id", "key", name="uq_shopify_pushes_store_product_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store: Mapped[str] = mapped_column(String(255))  # the store's host, e.g. shop.myshopify.com
    product_id: Mapped[int] = mapped_column(Integer, index=True)
    owner_gid: Mapped[str] = mapped_column(String(255))  # gid://shopify/Product/...
    key: Mapped[str] = mapped_column(String(128))  # namespace.key, e.g. sveta.colour
    value: Mapped[str] = mapped_column(Text)
    pushed_at: Mapped[datetime] = mapped_column(default=utcnow)
