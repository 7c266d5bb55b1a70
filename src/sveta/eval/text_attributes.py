"""Text attributes measured against the structured columns of a Myntra-style styles.csv."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sveta.errors import InputError
from sveta.ingest.feeds import MYNTRA_COLUMNS
from sveta.ingest.records import AttributeRecord
from sveta.ingest.text_attributes import extract_text_attributes, normalize_value

COLUMNS = MYNTRA_COLUMNS


def read_styles(styles_csv: Path) -> tuple[list[dict[str, str]], int]:
    """The well-formed rows of a styles.csv, and how many malformed ones were skipped."""
    rows: list[dict[str, str]] = []
    malformed = 0
    with Path(styles_csv).open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError(
                f"{styles_csv}: no column(s) {', '.join(missing)}",
                "give a styles.csv laid out like ../shared/datasets/myntra-small",
            )
        for row in reader:
            # An unquoted comma in a title shifts every later column: such a row cannot be trusted.
            if len(row) != len(header) or not row[header.index("productDisplayName")].strip():
                malformed += 1
                continue
            rows.append(dict(zip(header, row, strict=True)))
    return rows, malformed


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
