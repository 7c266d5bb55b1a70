"""`sveta demo`: build the demo catalog from the shared Myntra data and show what is in it."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from sveta.catalog.stats import catalog_stats
from sveta.cli._common import catalog, console, print_json, settings
from sveta.errors import InputError

DATA_HELP = (
    'download the public "Fashion Product Images (Small)" data set (Kaggle: paramaggarwal/'
    "fashion-product-images-small: styles.csv + images/), then run ./scripts/demo --data PATH"
)


def demo(
    data: Path | None = typer.Option(
        None, "--data", help="Folder with styles.csv and images/ (default: ../shared)."
    ),
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after building (no web page)."),
    as_json: bool = typer.Option(
        False, "--json", help="End with one JSON line: the catalog stats and timings."
    ),
) -> None:
    """Build the demo catalog (ingest; later: index, train) and print its stats."""
    from sveta.cli.catalog import show_stats
    from sveta.cli.ingest import ingest_feed

    folder = _demo_folder(data)
    started = time.perf_counter()
    report = ingest_feed(folder / "styles.csv", folder / "images", [], "myntra-small", "csv")
    seconds = time.perf_counter() - started
    console.print(
        f"catalog built from {folder} in {seconds:.1f} s: {report.new} new, {report.changed} changed, "
        f"{report.unchanged} unchanged ({settings().catalog_url})"
    )
    stats = catalog_stats(catalog())
    show_stats(stats)
    if not no_serve:
        console.print(
            "nothing to serve yet: the web page arrives with `sveta serve`; stopping after the build"
        )
    if as_json:
        print_json({"build_seconds": round(seconds, 2), "ingest": report.as_dict(), "stats": stats})


def _demo_folder(data: Path | None) -> Path:
    shared = settings().shared_dir
    folder = data or (shared / "datasets" / "myntra-small" if shared else None)
    if folder is None:
        raise InputError(
            "no demo data: ../shared is not beside the checkout and --data was not given", DATA_HELP
        )
    if not (folder / "styles.csv").is_file():
        raise InputError(f"{folder} has no styles.csv", DATA_HELP)
    return folder
