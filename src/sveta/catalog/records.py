"""Source-neutral product records that every reader produces and the catalog store consumes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class VariantRecord:
    """One purchasable variant (size / colour option) of a product."""

    external_id: str
    title: str | None = None
    options: dict[str, str] = field(default_factory=dict)  # option name -> value, e.g. {"Size": "M"}
    size: str | None = None
    colour: str | None = None
    sku: str | None = None
    price: float | None = None
    compare_at_price: float | None = None
    available: bool = True
    position: int = 0


@dataclass(slots=True)
class ImageRecord:
    """One product image: a remote URL (http/https) or a local file (file://)."""

    url: str
    position: int = 0
    width: int | None = None
    height: int | None = None
    alt: str | None = None
    variant_ids: list[str] = field(default_factory=list)  # external ids of the variants it shows


@dataclass(slots=True)
class AttributeRecord:
    """An attribute value with its origin (seller / text / image) and what produced it."""

    name: str
    value: str
    origin: str = "seller"
    confidence: float = 1.0
    evidence: str | None = None  # the words (text) or column (seller) that produced it
    model_version: str | None = None


@dataclass(slots=True)
class ProductRecord:
    """A product as read from a source, before it is stored."""

    external_id: str
    title: str
    handle: str | None = None
    description: str | None = None
    brand: str | None = None
    product_type: str | None = None
    tags: list[str] = field(default_factory=list)
    gender: str | None = None
    currency: str | None = None
    url: str | None = None
    available: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    variants: list[VariantRecord] = field(default_factory=list)
    images: list[ImageRecord] = field(default_factory=list)
    attributes: list[AttributeRecord] = field(default_factory=list)  # seller attributes
    price: float | None = None  # a single price for feeds without variants

    def fingerprint(self) -> str:
        """What decides "changed": the source's updated_at when it has one, else a hash of the raw record."""
        if self.updated_at is not None:
            return "u:" + self.updated_at.isoformat()
        # The whole derived record, not only the raw row: a new image file or --map changes it too.
        blob = json.dumps(_as_dict(self), sort_keys=True, default=str).encode()
        return "h:" + hashlib.sha256(blob).hexdigest()[:32]

    def price_range(self) -> tuple[float | None, float | None]:
        prices = [v.price for v in self.variants if v.price is not None]
        if self.price is not None:
            prices.append(self.price)
        return (min(prices), max(prices)) if prices else (None, None)


_NESTED = {"variants": VariantRecord, "images": ImageRecord, "attributes": AttributeRecord}
_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in (ProductRecord, *_NESTED.values())}


def _as_dict(record: ProductRecord) -> dict[str, Any]:
    """What ``dataclasses.asdict`` gives for a record, without its deep copy of every value (a fingerprint only
    serialises it): the same JSON, so the same fingerprint, at a quarter of the cost."""
    out = {name: getattr(record, name) for name in _NAMES[ProductRecord]}
    for name, cls in _NESTED.items():
        out[name] = [{n: getattr(item, n) for n in _NAMES[cls]} for item in out[name]]
    return out


@dataclass(slots=True)
class SourceRow:
    """A source's row before it is built into a record: its id, a digest of all the record is built from (the
    row, the reader's settings and version), and how to build it: an unchanged re-sync never builds the record."""

    external_id: str
    digest: str
    build: Callable[[], ProductRecord]
