"""`sveta export attributes`: each product's attributes at a confidence threshold, seller first, into one file."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta.atomic import write_text
from sveta.catalog.export_rows import ExportAttribute, ExportRow, export_rows, source_names
from sveta.errors import InputError
from sveta.learn.store import DEFAULT_NAME, has_model, model_dir
from sveta.ops.export_formats import FORMATS, Exported, Value, render

if TYPE_CHECKING:
    from sveta.catalog.store import CatalogStore
    from sveta.engines.audit import Finding
    from sveta.settings import Settings

DEFAULT_MIN_CONFIDENCE = 0.8
ORIGINS = {"seller": "seller", "text": "text", "image": "photo"}  # the catalog's "image" is the "photo"
_GUESS_ORDER = {"photo": 0, "text": 1}  # equal confidences: the photo model's value before the title's


@dataclass
class ExportReport:
    """What was written: rows, columns, exported values per attribute (and per origin), the audit's part."""

    path: str
    format: str
    min_confidence: float
    rows: int
    columns: list[str]
    values: dict[str, int]
    origins: dict[str, dict[str, int]]
    handles_from_source_id: int
    model: str | None
    audit: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("path", "format", "min_confidence", "rows")}
        out |= {"n_columns": len(self.columns), "columns": self.columns, "values": self.values}
        out |= {"origins": self.origins, "handles_from_source_id": self.handles_from_source_id, "model": self.model}
        return out | {"audit": self.audit, "seconds": self.seconds}


def parse_since(text: str) -> datetime:
    """An ISO date or time (a time without a zone is UTC), as an aware UTC datetime; anything else an InputError."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--changed-since is not a date: {text!r}",
            "give an ISO date or time, e.g. 2024-05-01 or 2024-05-01T12:00:00+02:00",
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def chosen_values(attributes: list[ExportAttribute], min_confidence: float) -> dict[str, Value]:
    """Per attribute name, the value to export: the seller's (its first, as stored) whatever the guesses say;
    otherwise the surest text or photo guess at or above ``min_confidence``; no value when none is that sure."""
    seller: dict[str, Value] = {}
    guesses: dict[str, list[Value]] = {}
    for a in attributes:
        value = Value(a.name, a.value, ORIGINS.get(a.origin, a.origin), a.confidence, a.model_version)
        if value.origin == "seller":
            seller.setdefault(a.name, value)
        elif a.value and a.confidence >= min_confidence:
            guesses.setdefault(a.name, []).append(value)
    chosen = {
        name: min(values, key=lambda v: (-v.confidence, _GUESS_ORDER.get(v.origin, 9), v.value))
        for name, values in guesses.items()
    }
    return dict(sorted((chosen | seller).items()))


def export_attributes(
    catalog: CatalogStore,
    settings: Settings,
    out: Path,
    *,
    fmt: str = "csv",
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    source: str | None = None,
    changed_since: datetime | None = None,
    force: bool = False,
    audit: bool = True,
    model_name: str = DEFAULT_NAME,
) -> ExportReport:
    """Write the export of the products that match into ``out`` (whole or not at all); an existing ``out`` is
    refused unless ``force``. The audit's findings join the CSV and JSONL rows when a model is trained."""
    started = time.perf_counter()
    _check(catalog, out, fmt, min_confidence, source, force)
    rows = export_rows(catalog, source=source, changed_since=changed_since)
    findings, audit_info = _findings(catalog, settings, audit and fmt != "shopify", model_name)
    if fmt == "shopify":
        audit_info = {"included": False, "reason": "the shopify format holds no findings: use --format csv or jsonl"}
    products = [Exported(row, _values(row, min_confidence), findings.get(row.product_id, [])) for row in rows]
    columns, text = render(fmt, products)
    write_text(out, text)
    return ExportReport(
        path=str(out),
        format=fmt,
        min_confidence=min_confidence,
        rows=len(products),
        columns=columns,
        values=_counts(products),
        origins=_origin_counts(products),
        handles_from_source_id=sum(p.row.handle is None for p in products),
        model=_model_version(settings, model_name),
        audit=audit_info,
        seconds=round(time.perf_counter() - started, 2),
    )


def chosen_products(
    catalog: CatalogStore, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE, source: str | None = None
) -> list[Exported]:
    """Each product's values as ``--format shopify`` exports them (same checks of the threshold and the source,
    same seller-first choice), without findings; `sveta shopify push` writes these to a store."""
    _check_filters(catalog, min_confidence, source)
    return [Exported(row, _values(row, min_confidence)) for row in export_rows(catalog, source=source)]


def _check(catalog: CatalogStore, out: Path, fmt: str, min_confidence: float, source: str | None, force: bool) -> None:
    """Every refusal before any work: nothing is read twice and nothing is written on bad input."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format: {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    if out.is_dir():
        raise InputError(f"{out} is a folder", "give the path of the file to write, e.g. out.csv")
    if out.exists() and not force:
        raise InputError(f"{out} already exists; nothing was written", "pass --force to replace it, or another path")
    _check_filters(catalog, min_confidence, source)


def _check_filters(catalog: CatalogStore, min_confidence: float, source: str | None) -> None:
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence must be between 0 and 1, not {min_confidence}", "e.g. --min-confidence 0.8")
    if source is not None:
        names = source_names(catalog)
        if source.lower() not in {n.lower() for n in names}:
            raise InputError(f"no source named {source!r}", f"known sources: {', '.join(names) or 'none yet'}")


def _values(row: ExportRow, min_confidence: float) -> dict[str, Value]:
    return chosen_values(row.attributes, min_confidence)


def _findings(
    catalog: CatalogStore, settings: Settings, wanted: bool, model_name: str
) -> tuple[dict[int, list[dict[str, Any]]], dict[str, Any]]:
    """The audit's findings per product, when asked and a model is trained (the audit reads each photo through
    it; cached features make a rerun cheap)."""
    if not wanted:
        return {}, {"included": False, "reason": "--no-audit"}
    if not has_model(settings, model_name):
        reason = f"no trained model {model_name!r}: run `sveta train` to add the audit's findings"
        return {}, {"included": False, "reason": reason}
    from sveta.engines.audit import run_audit

    report = run_audit(catalog, settings, model_name)
    by_product: dict[int, list[dict[str, Any]]] = {}
    for finding in report.findings:
        by_product.setdefault(finding.product_id, []).append(_finding(finding))
    info = {"included": True, "model": report.model, "n_products": report.n_products}
    return by_product, info | {"n_findings": len(report.findings)}


def _finding(f: Finding) -> dict[str, Any]:
    names = ("attribute", "stated", "origin", "evidence", "photo_value", "confidence", "stated_probability")
    return {n: getattr(f, n) for n in names} | {"title_agrees_with": f.title_agrees_with}


def _model_version(settings: Settings, name: str) -> str | None:
    """The trained model's version as the photo attributes record it (``tuned:NAME@MODEL_ID``), None without."""
    if not has_model(settings, name):
        return None
    try:
        card = json.loads((model_dir(settings, name) / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"tuned:{name}"
    return f"tuned:{card.get('name', name)}@{card.get('model_id', '')}"


def _counts(products: list[Exported]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in products:
        for name in p.values:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _origin_counts(products: list[Exported]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for p in products:
        for name, value in p.values.items():
            by = counts.setdefault(name, {})
            by[value.origin] = by.get(value.origin, 0) + 1
    return dict(sorted(counts.items()))
