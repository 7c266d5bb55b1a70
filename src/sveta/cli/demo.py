"""`sveta demo`: build the demo catalog from the shared Myntra data and show what is in it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sveta.catalog.stats import catalog_stats
from sveta.cli._common import catalog, console, print_json, progress, settings
from sveta.errors import InputError

if TYPE_CHECKING:
    from sveta.learn.finetune import FineTune

DATA_HELP = (
    'download the public "Fashion Product Images (Small)" data set (Kaggle: paramaggarwal/'
    "fashion-product-images-small: styles.csv + images/), then run ./scripts/demo --data PATH"
)


def demo(
    data: Path | None = typer.Option(None, "--data", help="Folder with styles.csv and images/ (default: ../shared)."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after building (no web page)."),
    train: bool = typer.Option(True, "--train/--no-train", help="Train attribute heads, tuned embedding, text map."),
    finetune: bool = typer.Option(
        False, "--finetune", help="Also fine-tune the CNN's last stage (kept if it beats the frozen CNN; ~+3 min)."
    ),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: the catalog stats and timings."),
) -> None:
    """Build the demo catalog (ingest, train, embed, index) and print its stats."""
    from sveta.cli.catalog import show_stats
    from sveta.cli.ingest import ingest_feed

    folder = _demo_folder(data)
    started = time.perf_counter()
    report = ingest_feed(folder / "styles.csv", folder / "images", [], "myntra-small", "csv")
    ingest_seconds = time.perf_counter() - started
    console.print(
        f"catalog built from {folder} in {ingest_seconds:.1f} s: {report.new} new, {report.changed} changed, "
        f"{report.unchanged} unchanged ({settings().catalog_url})"
    )
    stats = catalog_stats(catalog())
    show_stats(stats)
    training = _train(finetune) if train else None
    index_started = time.perf_counter()
    index = _build_index()
    steps = _steps(ingest_seconds, training, time.perf_counter() - index_started)
    seconds = time.perf_counter() - started
    console.print(f"demo built in {seconds:.1f} s; try: .venv/bin/sveta similar 15970 --sheet similar.png")
    if training:
        console.print('  or: .venv/bin/sveta search --text "navy blue formal shirt for men" --sheet text.png')
    if as_json:
        summary = {"build_seconds": round(seconds, 2), "ingest_seconds": round(ingest_seconds, 2), "steps": steps}
        print_json({**summary, "ingest": report.as_dict(), "train": training, "index": index, "stats": stats})
    if not no_serve:
        from sveta.cli.serve import run_server

        console.print("the web page: [bold]http://127.0.0.1:8000/[/] (--no-serve stops after the build)")
        run_server("127.0.0.1", 8000)


def _steps(ingest: float, training: dict[str, object] | None, index: float) -> dict[str, float]:
    """Seconds per step of the build, in order: ingest, each training step (features first), index."""
    trained = training.get("steps") if training else None
    trained = trained if isinstance(trained, dict) else {}
    steps = {"ingest": ingest} | {str(k): float(v) for k, v in trained.items()} | {"index": index}
    return {k: round(v, 2) for k, v in steps.items()}


def _train(finetune: bool = False) -> dict[str, object]:
    """Learn from the demo catalog; the index is then built with the tuned embedding (features are cached)."""
    from sveta.cli.learn import print_training, staged_progress
    from sveta.learn.catalog import train_catalog
    from sveta.learn.store import has_model

    if has_model(settings()):
        console.print("already trained: `sveta train` trains again")
        return {"trained": False}
    with staged_progress("features") as report_progress:
        report = train_catalog(catalog(), settings(), on_progress=report_progress, finetune=_finetune(finetune))
    print_training(report.as_dict())
    return report.as_dict()


def _finetune(wanted: bool) -> FineTune | None:
    from sveta.learn.finetune import FineTune

    return FineTune() if wanted else None


def _build_index() -> dict[str, object]:
    from sveta.index.catalog_index import sync_index

    with progress("indexing photos") as bar:
        report = sync_index(catalog(), settings(), on_progress=bar.update)
    console.print(
        f"index: {report.count} photos ({report.kind}, {report.embedder}), {report.embedded} embedded "
        f"in {report.seconds:.1f} s"
    )
    return report.as_dict()


def _demo_folder(data: Path | None) -> Path:
    shared = settings().shared_dir
    folder = data or (shared / "datasets" / "myntra-small" if shared else None)
    if folder is None:
        raise InputError("no demo data: ../shared is not beside the checkout and --data was not given", DATA_HELP)
    if not (folder / "styles.csv").is_file():
        raise InputError(f"{folder} has no styles.csv", DATA_HELP)
    return folder
