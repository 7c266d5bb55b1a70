"""`sveta eval ...`: measure what sveta finds against a labelled catalog (styles.csv + images/)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from sveta.cli._common import console, print_json
from sveta.errors import InputError

app = typer.Typer(
    help="Evaluate sveta on a labelled catalog folder (styles.csv + images/).", no_args_is_help=True
)


@app.command("text-attributes")
def text_attributes(
    path: Path = typer.Argument(..., help="A folder with styles.csv (or the styles.csv file itself)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of the measures."),
) -> None:
    """Coverage and agreement of gender / colour / category read from titles, against the seller columns."""
    from sveta.eval.text_attributes import evaluate_text_attributes

    styles = path / "styles.csv" if path.is_dir() else path
    if not styles.is_file():
        raise InputError(
            f"no styles.csv at {path}", "give a folder laid out like ../shared/datasets/myntra-small"
        )
    result = evaluate_text_attributes(styles)
    table = Table("attribute", "coverage", "agreement where found", title=f"{result['n_items']} titles")
    for name in ("gender", "colour", "category"):
        table.add_row(name, f"{result[f'{name}_coverage']:.3f}", f"{result[f'{name}_agreement']:.3f}")
    console.print(table)
    if as_json:
        print_json(result)
