"""`sveta catalog ...`: what is in the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sveta.catalog.stats import catalog_stats, plot_stats
from sveta.cli._common import catalog, console, print_json

app = typer.Typer(help="Inspect the catalog.", no_args_is_help=True)


@app.command("stats")
def stats(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys: products, by_category, ...)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write PNG bar charts into this folder."),
    top: int = typer.Option(15, "--top", help="Rows per table."),
) -> None:
    """Counts by category, gender, colour and source, and the most frequent title words."""
    data = catalog_stats(catalog())
    if plot is not None:
        for path in plot_stats(data, plot):
            console.print(f"wrote {path}")
    if as_json:
        print_json(data)
    else:
        show_stats(data, top)


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
    for name, info in data["sources"].items():
        console.print(f"source [bold]{name}[/] ({info['kind']}): {info['products']} products")
