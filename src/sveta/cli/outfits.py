"""`sveta outfits ...`: build a test outfit set from a labelled catalog, and train the outfit model for complete."""

from __future__ import annotations

from pathlib import Path

import typer

from sveta.cli._common import console, print_json, settings

app = typer.Typer(help="Outfit sets and the learned outfit-compatibility model.", no_args_is_help=True)

ITEMS_HELP = "For a CSV of (outfit id, product id): the labelled folder (styles.csv + images/) of its products."


@app.command("make-test-set")
def make_test_set(
    folder: Path = typer.Argument(..., help="A labelled folder (styles.csv + images/), e.g. ../shared/datasets/..."),
    out: Path = typer.Argument(..., help="Where to write the outfit set (Polyvore Outfits files)."),
    n: int = typer.Option(1000, "--outfits", min=10, help="How many looks (a fifth of them are the test split)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random looks."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: folder, train, test, items."),
) -> None:
    """Looks assembled by the outfit rules from a labelled catalog, with clashing pieces as the test's negatives.

    No outfit data ships offline: this set tests the outfit model's loading, training and metrics."""
    from sveta.outfits.synthetic import build_outfit_set

    result = build_outfit_set(folder, out, n, seed)
    console.print(f"{result['train']} train and {result['test']} test looks of {result['items']} items in {out}")
    if as_json:
        print_json(result)


@app.command("train")
def train(
    path: Path = typer.Argument(..., help="A Polyvore Outfits folder, or a CSV of (outfit id, product id)."),
    items: Path | None = typer.Option(None, "--items", help=ITEMS_HELP),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: fitb, auc, model, types, ..."),
) -> None:
    """Train the type-aware outfit model on PATH's train split and keep it: sveta complete then uses it."""
    from sveta.cli.learn import staged_progress
    from sveta.eval.outfits import train_outfit_model

    with staged_progress("photo features") as report:
        result = train_outfit_model(path, settings(), items, on_progress=report)
    console.print(
        f"{result['n_train']} outfits, types {', '.join(result['types'])}: "
        f"test FITB {result['fitb']:.3f}, AUC {result['auc']:.3f}; saved in {result['model']}"
    )
    if as_json:
        print_json(result)
