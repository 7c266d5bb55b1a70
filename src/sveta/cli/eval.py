"""`sveta eval ...`: measure what sveta finds against a labelled catalog (styles.csv + images/)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from sveta.cli._common import console, print_json
from sveta.errors import InputError

app = typer.Typer(help="Evaluate sveta on a labelled catalog folder (styles.csv + images/).", no_args_is_help=True)


@app.command("text-attributes")
def text_attributes(
    path: Path = typer.Argument(..., help="A folder with styles.csv (or the styles.csv file itself)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of the measures."),
) -> None:
    """Coverage and agreement of gender / colour / category read from titles, against the seller columns."""
    from sveta.eval.text_attributes import evaluate_text_attributes

    styles = path / "styles.csv" if path.is_dir() else path
    if not styles.is_file():
        raise InputError(f"no styles.csv at {path}", "give a folder laid out like ../shared/datasets/myntra-small")
    result = evaluate_text_attributes(styles)
    table = Table("attribute", "coverage", "agreement where found", title=f"{result['n_items']} titles")
    for name in ("gender", "colour", "category"):
        table.add_row(name, f"{result[f'{name}_coverage']:.3f}", f"{result[f'{name}_agreement']:.3f}")
    console.print(table)
    if as_json:
        print_json(result)


@app.command("retrieval")
def retrieval(
    path: Path = typer.Argument(..., help="A folder with styles.csv and images/{id}.jpg."),
    embedder: str | None = typer.Option(None, "--embedder", help="Embedder spec (default: the catalog's)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: p10_type, p10_type_colour, ..."),
) -> None:
    """Precision@10 of visual search: same articleType, same articleType and baseColour, same gender."""
    from sveta.cli._common import progress, settings
    from sveta.eval.retrieval import evaluate_retrieval
    from sveta.index.catalog_index import catalog_embedder_spec

    spec = embedder or catalog_embedder_spec(settings())
    with progress(f"embedding with {spec}") as bar:
        result = evaluate_retrieval(path, settings(), spec, on_progress=bar.update)
    console.print(
        f"{result['n_items']} items, {spec}: p@10 type {result['p10_type']:.3f}, "
        f"type+colour {result['p10_type_colour']:.3f}, gender {result['p10_gender']:.3f} ({result['seconds']} s)"
    )
    if as_json:
        print_json(result)
