"""The enrichment export's three file formats: a wide CSV, JSON lines, and a CSV that Shopify's product import reads."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sveta.catalog.export_rows import ExportRow

FORMATS = ("csv", "jsonl", "shopify")
NAMESPACE = "sveta"  # the metafields' namespace in the shop: sveta.colour, sveta.pattern, ...
KEYS = {"sleeve_length": "sleeve"}  # metafield keys the issue names differently from the attribute
BASE_COLUMNS = ["source", "source_id", "handle", "handle_is_source_id", "title", "updated_at", "tags"]
FIELDS = ("origin", "confidence", "model_version")  # beside each attribute's value in the CSV


@dataclass(frozen=True, slots=True)
class Value:
    """The one value exported for an attribute: the seller's when there is one, else the surest guess."""

    name: str
    value: str
    origin: str  # seller | text | photo
    confidence: float
    model_version: str | None


@dataclass(slots=True)
class Exported:
    """One product's row: its catalog row, the values chosen per attribute, the audit's findings on it."""

    row: ExportRow
    values: dict[str, Value]
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def handle(self) -> str:
        """The shop's handle; a feed has none, so its own id stands in (the report counts those)."""
        return self.row.handle or self.row.external_id


def render(fmt: str, products: list[Exported]) -> tuple[list[str], str]:
    """The file's columns (JSONL: its keys) and its whole text."""
    names = sorted({name for p in products for name in p.values})
    renderers: dict[str, Callable[[list[Exported], list[str]], tuple[list[str], str]]] = {
        "csv": _csv,
        "jsonl": _jsonl,
        "shopify": _shopify,
    }
    return renderers[fmt](products, names)


def metafield_key(name: str) -> str:
    """An attribute's metafield key: Shopify allows letters, digits, ``_`` and ``-``, 64 characters at most."""
    return re.sub(r"[^a-z0-9_-]+", "_", KEYS.get(name, name).lower())[:64]


def shopify_header(name: str) -> str:
    """The product CSV's column header of one sveta metafield.

    Shopify's help page "Using CSV files to import and export products"
    (https://help.shopify.com/en/manual/products/import-export/using-csv, section "Metafields in CSV columns")
    gives a product metafield's column header as ``<metafield name> (product.metafields.<namespace>.<key>)``,
    e.g. ``Colour (product.metafields.sveta.colour)``; the import identifies the metafield by the part in
    parentheses. The same page: the first line holds the column headers, and updating existing products needs
    the ``Handle`` and ``Title`` columns, so the file is ``Handle``, ``Title``, ``Tags``, then one column per
    metafield. The sveta.* metafield definitions must exist in the shop before the import fills them.
    """
    key = metafield_key(name)
    return f"{key.replace('_', ' ').capitalize()} (product.metafields.{NAMESPACE}.{key})"


def merged_tags(existing: list[str], values: dict[str, Value]) -> list[str]:
    """The product's tags, every one kept and in its order, then ``key:value`` for each exported value that is
    not a tag yet. Shopify splits the Tags cell on commas and compares tags without case, so new tags hold no
    comma and a tag that differs only in case is not added twice."""
    out = [t for t in existing if t.strip()]
    seen = {t.strip().lower() for t in out}
    for name, value in values.items():
        tag = f"{metafield_key(name)}:{_one_line(value.value).replace(',', ' ')}"
        if tag.lower() not in seen:
            out.append(tag)
            seen.add(tag.lower())
    return out


def _shopify(products: list[Exported], names: list[str]) -> tuple[list[str], str]:
    columns = ["Handle", "Title", "Tags", *(shopify_header(n) for n in names)]
    rows = [
        [p.handle, p.row.title, ", ".join(merged_tags(p.row.tags, p.values)),
         *(_one_line(p.values[n].value) if n in p.values else "" for n in names)]
        for p in products
    ]  # fmt: skip
    return columns, _csv_text(columns, rows)


def _csv(products: list[Exported], names: list[str]) -> tuple[list[str], str]:
    columns = [*BASE_COLUMNS, *(c for n in names for c in (n, *(f"{n}_{f}" for f in FIELDS))), "audit_findings"]
    rows = []
    for p in products:
        cells: list[Any] = [*_base(p)[:-1], ", ".join(p.row.tags)]
        for n in names:
            v = p.values.get(n)
            cells += [v.value, v.origin, round(v.confidence, 4), v.model_version or ""] if v else ["", "", "", ""]
        rows.append([*cells, "; ".join(_finding_text(f) for f in p.findings)])
    return columns, _csv_text(columns, rows)


def _jsonl(products: list[Exported], names: list[str]) -> tuple[list[str], str]:
    columns = [*BASE_COLUMNS, "attributes", "findings"]
    lines = []
    for p in products:
        attributes = {
            n: {"value": v.value, "origin": v.origin, "confidence": round(v.confidence, 4),
                "model_version": v.model_version}
            for n, v in p.values.items()
        }  # fmt: skip
        record = dict(zip(BASE_COLUMNS, _base(p), strict=True))
        lines.append(json.dumps(record | {"attributes": attributes, "findings": p.findings}, ensure_ascii=False))
    return columns, "".join(f"{line}\n" for line in lines)


def _base(p: Exported) -> list[Any]:
    row = p.row
    return [row.source, row.external_id, p.handle, row.handle is None, row.title, row.updated_at.isoformat(), row.tags]


def _finding_text(f: dict[str, Any]) -> str:
    return f"{f['attribute']}: {f['stated']} ({f['origin']}) but the photo shows {f['photo_value']} ({f['confidence']})"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _csv_text(columns: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quoted where needed, CRLF line ends, as Shopify's own exports
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()
