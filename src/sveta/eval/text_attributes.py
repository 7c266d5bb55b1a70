"""Text attributes measured against the structured columns of a Myntra-style styles.csv."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sveta.catalog.records import AttributeRecord
from sveta.ingest.styles import read_styles
from sveta.ingest.text_attributes import extract_text_attributes
from sveta.vocab.reading import normalize_value


def _first(records: list[AttributeRecord], name: str) -> str | None:
    # Records come best first within an attribute, so the first colour is the primary one.
    return next((r.value for r in records if r.name == name), None)


def _score(
    rows: list[dict[str, str]], predicted: list[str | None], truth: Callable[[dict[str, str]], str | None]
) -> tuple[float, float]:
    """Coverage over all rows; agreement over the rows with a prediction and a known true value."""
    found = [(p, truth(row)) for p, row in zip(predicted, rows, strict=True) if p is not None]
    judged = [(p, t) for p, t in found if t]
    coverage = len(found) / len(rows) if rows else 0.0
    agreement = sum(p == t for p, t in judged) / len(judged) if judged else 0.0
    return round(coverage, 4), round(agreement, 4)


def evaluate_text_attributes(styles_csv: Path) -> dict[str, Any]:
    """Gender, colour and category read from each title alone, against the gender, baseColour and
    articleType columns."""
    rows, malformed = read_styles(styles_csv)
    start = time.perf_counter()
    extracted = [extract_text_attributes(row["productDisplayName"]) for row in rows]
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"n_items": len(rows), "n_malformed": malformed}
    columns: dict[str, Callable[[dict[str, str]], str | None]] = {
        "gender": lambda row: row["gender"].strip() or None,
        "colour": lambda row: row["baseColour"].strip() or None,
        "category": lambda row: normalize_value("category", row["articleType"]),
    }
    for name, truth in columns.items():
        predicted = [_first(records, name) for records in extracted]
        result[f"{name}_coverage"], result[f"{name}_agreement"] = _score(rows, predicted, truth)
    result["seconds"] = round(seconds, 3)
    return result
