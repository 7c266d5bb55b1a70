"""`sveta catalog ...`: what is in the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sveta.catalog.copy import copy_catalog, table_counts
from sveta.catalog.stats import catalog_crosstab, catalog_stats, plot_crosstab, plot_stats
from sveta.catalog.store import redacted_url
from sveta.cli._common import catalog, console, print_json, progress

app = typer.Typer(help="Inspect the catalog.", no_args_is_help=True)


@app.command("stats")
def stats(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys: products, by_category, ...)."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write PNG bar charts and the category cross-tab heatmaps into this folder."
    ),
    top: int = typer.Option(15, "--top", help="Rows per table."),
) -> None:
    """Counts by category, gender, colour and source, the most frequent title words, and gender and colour per
    category (--json: gender_by_category, colour_by_category)."""
    crosstab = catalog_crosstab(catalog())
    data = catalog_stats(catalog()) | crosstab
    if plot is not None:
        for path in plot_stats(data, plot) + plot_crosstab(crosstab, plot):
            console.print(f"wrote {path}")
    if as_json:
        print_json(data)
    else:
        show_stats(data, top)


@app.command("copy")
def copy(
    target_url: str = typer.Argument(..., help="Database URL to copy into, e.g. postgresql+psycopg://user@host/db."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: {target, tables: {name: rows}}."),
) -> None:
    """Copy the whole catalog (SVETA_DATABASE_URL) into an empty database, ids kept.

    Then point SVETA_DATABASE_URL at it: the index, the image cache and the trained models stay valid.
    """
    source = catalog()
    with progress("copying the catalog", total=sum(table_counts(source).values())) as advance:
        counts = copy_catalog(source, target_url, progress=lambda _table, n: advance(n))
    shown = redacted_url(target_url)
    console.print(
        f"copied {sum(counts.values())} rows into {shown}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    console.print(f"next: export SVETA_DATABASE_URL='{shown}' (with its password)")
    if as_json:
        print_json({"target": shown, "tables": counts})


def show_stats(data: dict[str, Any], top: int = 15) -> None:
    """Print the stats as tables (to stderr, like all human output)."""
    console.print(
        f"[bold]{data['products']}[/] products ({data['available']} available, {data['gone']} gone), "
        f"{data['variants']} variants, images: {data['images']}"
    )
    for key in ("by_category", "by_gender", "by_colour", "top_title_words"):
        table = Table(title=key.replace("_", " "), show_header=False, box=None)
        for name, count in list(data[key].items())[:top]:
            table.add_row(str(name), str(count))
        console.print(table)
    if "gender_by_category" in data:
        console.print(crosstab_table(data["gender_by_category"], "gender per category", top))
    for name, info in data["sources"].items():
        console.print(f"source [bold]{name}[/] ({info['kind']}): {info['products']} products")


def crosstab_table(table: dict[str, dict[str, int]], title: str, top: int = 15) -> Table:
    """A cross-tab as a table: the top categories by every value in any of them (commonest first)."""
    values: dict[str, int] = {}
    for row in list(table.values())[:top]:
        for value, count in row.items():
            values[value] = values.get(value, 0) + count
    columns = sorted(values, key=lambda v: (-values[v], v))
    grid = Table("category", *columns, title=title, box=None, title_justify="left")
    for category, row in list(table.items())[:top]:
        grid.add_row(category, *(str(row.get(v, "")) for v in columns))
    return grid
