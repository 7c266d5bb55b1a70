"""The values of a feed's cells: text, tags, prices, stock flags, image references; CSV rows and their errors."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

from sveta.errors import InputError
from sveta.vocab.html_text import storable

TRUE_WORDS = {"1", "true", "yes", "y", "in stock", "in_stock", "available", "t"}


def csv_row(header: list[str], values: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(header, values, strict=False))
    for name in header[len(values) :]:  # a short row: its missing columns are None, as csv.DictReader gives
        row.setdefault(name, None)
    if len(values) > len(header):  # an unquoted comma in the last column (Myntra titles have some)
        row[header[-1]] = ",".join(values[len(header) - 1 :])
    return row


def quote_line(start: int, values: list[str]) -> int:
    """The line where the field with the most line breaks opens: the stray quote is there."""
    breaks = [value.count("\n") for value in values]
    return start + sum(breaks[: breaks.index(max(breaks))])


def csv_error(path: Path, line: int, exc: csv.Error) -> InputError:
    if "field limit" in str(exc):  # a 128 KB field is almost always an unclosed quote running on
        return InputError(
            f"{path}: the row at line {line} has a field over {csv.field_size_limit() // 1024} KB",
            f"a quote on line {line} is probably never closed: fix the quoting of line {line}",
        )
    return InputError(f"{path}: line {line}: {exc}", f"fix line {line}")


def clean_text(value: Any) -> str | None:
    return (storable(str(value)).strip() or None) if value is not None else None


def tag_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [tag for item in items if (tag := clean_text(item))]


def parse_price(value: str | None) -> float | None:
    cleaned = re.sub(r"[^0-9.]", "", (value or "").replace(",", ""))  # ASCII digits: all float() reads reliably
    try:
        price = float(cleaned)
    except ValueError:  # nothing left, or "1.2.3"
        return None
    return price if math.isfinite(price) else None  # "9" * 400 is inf


def parse_available(value: Any) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def image_refs(value: Any) -> list[str]:
    if isinstance(value, list):  # JSONL: URLs, or objects with a "src" / "url" (one with neither is no image)
        refs = [v.get("src") or v.get("url") if isinstance(v, dict) else v for v in value]
        return [ref for item in refs if (ref := clean_text(item))]
    return [ref for part in re.split(r"[|\n]", str(value or "")) if (ref := clean_text(part))]
