"""A labelled catalog folder's styles.csv (Myntra layout): its well-formed rows, malformed ones counted."""

from __future__ import annotations

import csv
from pathlib import Path

from sveta.errors import InputError
from sveta.ingest.feeds import MYNTRA_COLUMNS

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
