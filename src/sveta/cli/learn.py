"""`sveta train` and `sveta tag`: learn attribute heads and the tuned embedding from the catalog, tag photos."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, progress, settings
from sveta.errors import InputError

if TYPE_CHECKING:
    from sveta.learn.finetune import FineTune


@contextmanager
def staged_progress(first: str) -> Iterator[Any]:
    """A progress bar whose stage name is printed as it changes: callbacks get (stage, done, total)."""
    with progress(first) as bar:
        stage = [first]

        def report(label: str, done: int, total: int | None) -> None:
            if label != stage[0]:
                stage[0] = label
                console.print(f"[dim]{label}[/]")
            bar.update(done, total)

        yield report


def train(
    name: str = typer.Option("catalog", "--name", help="Model name; the embedder becomes tuned:NAME."),
    no_text: bool = typer.Option(False, "--no-text", help="Skip the text map (no text search)."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not rebuild the index with the tuned embedding."),
    start: Path | None = typer.Option(
        None, "--from", help="Start from a model file (sveta model export) trained on a larger catalog."
    ),
    finetune: bool = typer.Option(
        False, "--finetune", help="Also train the CNN's last stages; kept if it beats the frozen CNN on held-out data."
    ),
    stages: int | None = typer.Option(
        None, "--stages", min=1, max=7, help="With --finetune: stages trained (default 1 on CPU, 7 = all on a GPU)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="With --finetune: cpu or cuda (default: cuda when torch sees a GPU)."
    ),
    epochs: int = typer.Option(3, "--epochs", min=1, help="With --finetune: passes over the photos."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: sizes, held-out metrics, seconds."),
) -> None:
    """Train attribute heads, the tuned embedding and the text map on the catalog; tag every product."""
    from sveta.index.catalog_index import sync_index
    from sveta.learn.catalog import train_catalog
    from sveta.learn.portable import load_portable

    begin = load_portable(settings(), start) if start is not None else None
    tune = _finetune(finetune, stages, device, epochs)
    with staged_progress("features") as report_progress:
        report = train_catalog(
            catalog(), settings(), name, text=not no_text, on_progress=report_progress, start=begin, finetune=tune
        )
    print_training(report.as_dict())
    if not no_index:
        with progress(f"indexing with tuned:{name}") as bar:
            sync = sync_index(catalog(), settings(), embedder=f"tuned:{name}", rebuild=True, on_progress=bar.update)
        console.print(f"index: {sync.count} vectors with tuned:{name} ({sync.seconds:.1f} s)")
    if as_json:
        print_json(report.as_dict())


def _finetune(wanted: bool, stages: int | None, device: str | None, epochs: int) -> FineTune | None:
    from sveta.learn.finetune import FineTune

    if not wanted:
        if stages is not None or device is not None:
            raise InputError("--stages and --device are settings of --finetune", "add --finetune")
        return None
    if device not in (None, "cpu", "cuda"):
        raise InputError(f"unknown device {device!r}", "give --device cpu or --device cuda")
    return FineTune(stages=stages, device=device, epochs=epochs)


def print_training(report: dict[str, Any]) -> None:
    console.print(
        f"trained tuned:{report['name']} on {report['n_train']} products, held out {report['n_test']}; "
        f"tagged {report['tagged']} ({report['seconds']:.0f} s) -> {report['model_dir']}"
    )
    table = Table("attribute", "wF1 (photos)", "wF1 (thumbnail-like)", title="held-out products")
    attributes = sorted({k.split("/")[1].rsplit("_", 1)[0] for k in report["metrics"]})
    for attribute in attributes:
        cells = [
            f"{report['metrics'].get(f'{view}/{attribute}_wf1', float('nan')):.3f}" for view in ("sharp", "thumbnail")
        ]
        table.add_row(attribute, *cells)
    console.print(table)
    if tuned := report.get("finetune"):
        scores = tuned["held_out_mean_wf1"]
        console.print(
            f"fine-tuning ({tuned['network']['trained']}, {tuned['network']['seconds']:.0f} s): kept {tuned['kept']}; "
            f"mean held-out wF1 {scores['tuned']:.3f} fine-tuned, {scores['frozen']:.3f} frozen"
        )
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}")


def tag(
    query: str = typer.Argument(..., help="A photo file, an http(s) URL, or a catalog product id."),
    name: str = typer.Option("catalog", "--name", help="The trained model (see sveta train)."),
    zero_shot: str | None = typer.Option(
        None, "--zero-shot", help="Tag with this CLIP embedder's text prompts instead (no training needed)."
    ),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: each attribute and its answer."),
) -> None:
    """Each attribute the photo shows, its calibrated confidence and the top alternatives."""
    from sveta.learn.tagging import tag_query

    result = tag_query(query, settings(), catalog, name, zero_shot)
    table = Table("attribute", "value", "confidence", "alternatives", title=str(query))
    for attribute, p in result["attributes"].items():
        others = ", ".join(f"{v} {c:.2f}" for v, c in p["alternatives"][1:])
        table.add_row(attribute, p["value"], f"{p['confidence']:.2f}", others)
    console.print(table)
    if as_json:
        print_json(result)
