"""The API's response bodies as pydantic models: one per shape, fields in the order the JSON has them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Schema(BaseModel):
    """A response body: the model is the contract, so a key it does not name is left out of the answer.

    Not an error: a library result that grew a key must not turn a good answer into a 500. The before/after
    test (tests/test_api_contract.py) checks that every key clients had is still here.
    """

    model_config = ConfigDict(extra="ignore")


# -- service ----------------------------------------------------------------------------------------
class Health(Schema):
    status: str = Field(description="Always 'ok': the process answers.")
    version: str


class CatalogCheck(Schema):
    ok: bool
    products: int | None = Field(None, description="When ok: the products in the catalog.")
    error: str | None = Field(None, description="When not ok: why.")


class IndexCheck(Schema):
    ok: bool
    vectors: int | None = Field(None, description="When ok: the vectors in the live index.")
    embedder: str | None = None
    kind: str | None = Field(None, description="The index backend.")
    error: str | None = Field(None, description="When not ok: why.")


class Checks(Schema):
    catalog: CatalogCheck
    index: IndexCheck


class Readiness(Schema):
    ready: bool
    checks: Checks


class ErrorDetail(Schema):
    code: str
    message: str
    hint: str | None


class ErrorBody(Schema):
    """Every error's body: ``{"error": {"code", "message", "hint"}}``."""

    error: ErrorDetail


class NotReady(Readiness):
    """The 503 of /readyz: the checks and the error envelope every API error has."""

    error: ErrorDetail


class PhotoLabel(Schema):
    """What an answer says about the uploaded photo it answered."""

    name: str
    format: str
    size: list[int] = Field(description="[width, height] in pixels.")


# -- products ---------------------------------------------------------------------------------------
class ProductCard(Schema):
    """What a list or a result shows about a product."""

    product_id: int
    source_id: str = Field(description="The source's own id (a Myntra id, a Shopify id).")
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
    handle: str | None = Field(description="The storefront's handle (Shopify's), for a link to the product's page.")


class ProductPage(Schema):
    total: int = Field(description="Products matching the filters, on all pages (at least this many when capped).")
    limit: int
    offset: int
    items: list[ProductCard]
    total_capped: bool = Field(
        False, description="True when counting stopped at 10,000 (or offset + limit): then total means 'at least'."
    )


class Variant(Schema):
    external_id: str
    title: str | None
    options: dict[str, Any]
    size: str | None
    colour: str | None
    sku: str | None
    price: float | None
    compare_at_price: float | None
    available: bool
    position: int


class ProductImage(Schema):
    id: int
    url: str
    position: int
    width: int | None
    height: int | None
    alt: str | None
    status: str = Field(description="pending | cached | broken")
    local_path: str | None
    error: str | None
    href: str | None = Field(description="The photo from this API when it is cached.")


class Attribute(Schema):
    name: str
    value: str
    origin: str = Field(description="seller | text | image")
    confidence: float
    evidence: str | None
    model_version: str | None


class Mismatch(Schema):
    """An attribute whose origins state different values: each origin's values."""

    name: str
    values: dict[str, list[str]]


class ProductDetail(ProductCard):
    description: str | None
    product_type: str | None
    tags: list[str]
    price_max: float | None
    gone_at: datetime | None
    first_seen_at: datetime
    updated_at: datetime
    variants: list[Variant]
    images: list[ProductImage]
    attributes: list[Attribute]
    mismatches: list[Mismatch]


# -- complete, tag, audit (search answers: schemas_search.py) --------------------------------------
class Piece(Schema):
    """What is being completed: a catalog product or the piece in a photo."""

    label: str
    product_id: int | None
    category: str | None
    slot: str
    gender: str | None
    occasion: str | None
    season: str | None
    colour: str | None
    price: float | None
    age_group: str
    loud_pattern: bool
    predicted: dict[str, str] = Field(description="For a photo: attribute -> how its value was found.")


class RuleNote(Schema):
    """A merchandising rule that moved a result (``sveta rules``)."""

    id: int = Field(description="The rule's id (sveta rules list).")
    action: str = Field(description="pin, boost or bury.")
    says: str = Field(description='What it did, e.g. "pinned to 1 by rule 3 (red dress)".')


class Suggestion(Schema):
    product_id: int
    source_id: str
    slot: str
    title: str
    score: float
    reason: str
    category: str | None
    colour: str | None
    gender: str | None
    price: float | None
    image_path: str | None
    parts: dict[str, float] = Field(description="The score's parts, by name.")
    rule: RuleNote | None = Field(None, description="The merchandising rule that moved it, if one did.")
    url: str | None = Field(description="The product's page in its shop, when the source gives one.")
    handle: str | None = Field(description="The storefront's handle (Shopify's), for a link to the product's page.")
    currency: str | None = Field(description="The price's currency (ISO 4217), when the source gives one.")


class Completion(Schema):
    piece: Piece
    slots: list[str]
    items: list[Suggestion]
    looks: list[list[int]] = Field(description="Whole outfits: look n takes the n-th pick of every slot.")
    ms: float
    search_id: int | None = Field(
        None, description="This answer's record in the search insights (send it with a click); null when not kept."
    )


class PhotoCompletion(Completion):
    photo: PhotoLabel


class Prediction(Schema):
    value: str
    confidence: float
    alternatives: list[tuple[str, float]] = Field(description="The top classes, best first: [value, probability].")


class TagAnswer(Schema):
    query: str
    photo: PhotoLabel
    model: str
    attributes: dict[str, Prediction]


class Finding(Schema):
    """A listing whose stated value the photo contradicts."""

    product_id: int
    title: str
    photo: str
    attribute: str
    stated: str
    origin: str
    evidence: str
    stated_probability: float
    photo_value: str
    confidence: float
    title_agrees_with: str | None


class AuditPage(Schema):
    n_products: int
    n_findings: int
    model: str
    checked: dict[str, int] = Field(description="Attribute -> stated values the model could judge.")
    seconds: float
    findings: list[Finding]
    total: int
    limit: int
    offset: int


# -- sources and crawls -----------------------------------------------------------------------------
class CrawlRun(Schema):
    id: int
    source_id: int
    status: str = Field(description="running | ok | failed | interrupted")
    started_at: datetime
    finished_at: datetime | None
    pages: int
    new: int
    changed: int
    unchanged: int
    gone: int
    errors: list[str]
    notes: list[str]


class SourceCrawlRun(CrawlRun):
    source: str


class SourceBase(Schema):
    id: int
    name: str
    kind: str = Field(description="shopify | csv | jsonl | folder")
    location: str
    created_at: datetime


class Source(SourceBase):
    last_run: CrawlRun | None


class ListedSource(SourceBase):
    products: int
    last_run: CrawlRun | None


class CrawlStarted(Schema):
    run_id: int
    source_id: int
    source: str
    status: str
    href: str = Field(description="Where to follow the run.")


# -- stats and map ----------------------------------------------------------------------------------
class LastRunStats(Schema):
    status: str
    finished_at: str | None
    new: int
    changed: int
    unchanged: int
    gone: int


class SourceStats(Schema):
    kind: str
    location: str
    products: int
    last_run: LastRunStats | None


class IndexSummary(Schema):
    vectors: int
    embedder: str
    kind: str
    version: str | None


class CatalogStats(Schema):
    products: int
    available: int
    gone: int
    variants: int
    images: dict[str, int] = Field(description="Images by status.")
    by_category: dict[str, int]
    by_gender: dict[str, int]
    by_colour: dict[str, int]
    sources: dict[str, SourceStats] = Field(description="By source name.")
    top_title_words: dict[str, int]
    index: IndexSummary | None


class MapPoint(Schema):
    product_id: int
    image_id: int
    x: float
    y: float
    category: str
    title: str
    href: str


class CatalogMap(Schema):
    method: str
    total: int = Field(description="Products in the index.")
    count: int
    explained: list[float] = Field(description="PCA: the variance share of each axis; t-SNE: [].")
    categories: list[str]
    points: list[MapPoint]
    version: str | None = Field(description="The index version the map is of.")
    status: str = Field(
        description="'ready', or 'computing': the t-SNE map is being made in the background and these are the PCA "
        "map's points meanwhile (method says which); ask again in a moment."
    )
    max_points: int = Field(description="The most products the method's map holds (t-SNE: SVETA_MAP_POINTS).")
    clamped: bool = Field(description="Whether the limit asked for more than max_points (then max_points came).")
