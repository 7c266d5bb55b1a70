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
    train: Path | None = typer.Option(
        None, "--train", help="Learn the tuned embedding on this labelled folder first, and evaluate it."
    ),
    finetune: bool = typer.Option(False, "--finetune", help="With --train: fine-tune the CNN's last stages too."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: p10_type, p10_type_colour, ..."),
) -> None:
    """Precision@10 of visual search: same articleType, same articleType and baseColour, same gender."""
    from sveta.cli._common import progress, settings
    from sveta.cli.learn import staged_progress
    from sveta.eval.retrieval import evaluate_retrieval
    from sveta.index.catalog_index import catalog_embedder_spec

    spec = embedder or catalog_embedder_spec(settings())
    if train is not None:
        from sveta.eval.attributes import save_folder_model
        from sveta.learn.finetune import FineTune

        with staged_progress("training features") as report:
            spec = save_folder_model(train, settings(), report, FineTune() if finetune else None)
    with progress(f"embedding with {spec}") as bar:
        result = evaluate_retrieval(path, settings(), spec, on_progress=bar.update)
    console.print(
        f"{result['n_items']} items, {spec}: p@10 type {result['p10_type']:.3f}, "
        f"type+colour {result['p10_type_colour']:.3f}, gender {result['p10_gender']:.3f} ({result['seconds']} s)"
    )
    if as_json:
        print_json(result)


@app.command("attributes")
def attributes(
    train: Path = typer.Argument(..., help="A labelled folder (styles.csv + images/) to train the heads on."),
    test: Path = typer.Argument(..., help="A labelled folder to measure them on."),
    plot: Path | None = typer.Option(None, "--plot", help="Write confusion-matrix PNGs into this folder."),
    start: Path | None = typer.Option(None, "--from", help="Train TRAIN starting from this model file."),
    finetune: bool = typer.Option(False, "--finetune", help="Fine-tune the CNN's last stages too (sveta train)."),
    stages: int | None = typer.Option(None, "--stages", min=1, max=7, help="With --finetune: how many stages."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: articleType_wf1, ..._acc, ..."),
) -> None:
    """Attribute heads from photos: weighted F1 and accuracy per attribute on TEST after training on TRAIN."""
    from sveta.cli._common import settings
    from sveta.cli.learn import staged_progress
    from sveta.eval.attributes import evaluate_attributes
    from sveta.learn.finetune import FineTune
    from sveta.learn.portable import load_portable

    begin = load_portable(settings(), start) if start is not None else None
    tune = FineTune(stages=stages) if finetune else None
    with staged_progress("features") as report:
        result = evaluate_attributes(train, test, settings(), plot, report, begin, tune)
    table = Table("attribute", "weighted F1", "accuracy", title=f"{result['n_items']} test photos")
    for column in ("articleType", "baseColour", "gender", "usage"):
        if f"{column}_wf1" in result:
            table.add_row(column, f"{result[f'{column}_wf1']:.3f}", f"{result[f'{column}_acc']:.3f}")
    console.print(table)
    if plot is not None:
        console.print(f"confusion matrices in {plot}")
    if as_json:
        print_json(result)


@app.command("text-search")
def text_search(
    train: Path = typer.Argument(..., help="A labelled folder (styles.csv + images/) to learn the text map on."),
    test: Path = typer.Argument(..., help="A labelled folder whose titles search its own photos."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: r1, r10, mrr, n_train, ..."),
) -> None:
    """Title -> photo search without CLIP: learn the text map on TRAIN, rank TEST's photos for each TEST title."""
    from sveta.cli._common import progress, settings
    from sveta.eval.text_search import evaluate_text_search

    with progress("photos and titles") as bar:
        result = evaluate_text_search(train, test, settings(), on_progress=bar.update)
    console.print(
        f"{result['n_items']} test titles, gallery {result['gallery']} photos ({result['n_train']} trained on), "
        f"{result['text_model']}: "
        f"r@1 {result['r1']:.3f}, r@10 {result['r10']:.3f}, mrr {result['mrr']:.3f} ({result['seconds']} s)"
    )
    if as_json:
        print_json(result)


@app.command("queries")
def queries(
    path: Path = typer.Argument(..., help="A labelled folder (styles.csv + images/), split into train / val / test."),
    part: str = typer.Option("test", "--part", help="The held-out part searched: val (to choose settings) or test."),
    images: str = typer.Option("images", "--images", help="The photo subfolder: images, or thumbs (thumbnail-like)."),
    work: Path | None = typer.Option(None, "--work", help="Keep the throwaway catalogs here (reused by later runs)."),
    tune: bool = typer.Option(False, "--tune", help="Also try the fusion weights' grid (on --part val only)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: P@10 per kind, and vector_only."),
) -> None:
    """Shopper queries made from the labels (category, colour + category, brand + category, gender + colour +
    category, "not COLOUR", photo + "in COLOUR"): precision@10 of hybrid search beside vector-only, same run."""
    from sveta.cli._common import settings
    from sveta.cli.learn import staged_progress
    from sveta.eval.queries import evaluate_queries
    from sveta.eval.query_sets import KINDS

    if tune and part != "val":
        raise InputError("--tune chooses settings, so it runs on --part val only", "add --part val")
    if not (path / images).is_dir():
        raise InputError(
            f"no {images}/ folder in {path}", "give a folder laid out like ../shared/datasets/myntra-small"
        )
    with staged_progress("building") as report:
        result = evaluate_queries(path, settings(), part=part, images=images, work=work, tune=tune, on_progress=report)
    table = Table("kind", "queries", "hybrid P@10", "vector-only P@10", title=_queries_title(result))
    for kind in KINDS:
        table.add_row(kind, str(result["n_queries"][kind]), _p(result[kind]), _p(result["vector_only"][kind]))
    console.print(table)
    ts = result["text_search"]
    console.print(
        f"title -> own product, {ts['n_queries']} titles, gallery {ts['gallery']} photos: "
        f"r@10 hybrid {ts['hybrid']['r10']:.3f}, text map alone {ts['text_map']['r10']:.3f}"
    )
    if as_json:
        print_json(result)


def _queries_title(result: dict[str, object]) -> str:
    return f"{result['part']} part ({result['images']}): {result['n_products']} products, {result['gallery']} photos"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("audit")
def audit(
    train: Path = typer.Argument(..., help="A labelled folder (styles.csv + images/) to train the photo model on."),
    test: Path = typer.Argument(..., help="A labelled folder: 5% of its listings get a wrong value, then audited."),
    finetune: bool = typer.Option(False, "--finetune", help="Fine-tune the CNN's last stages too (sveta train)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: precision, recall, n_items, ..."),
) -> None:
    """The listing audit's flags on TEST after a seeded 5% of its listings get a wrong colour, type or gender."""
    from sveta.cli._common import settings
    from sveta.cli.learn import staged_progress
    from sveta.eval.audit import evaluate_audit
    from sveta.learn.finetune import FineTune

    with staged_progress("features") as report:
        result = evaluate_audit(train, test, settings(), report, FineTune() if finetune else None)
    console.print(
        f"{result['n_items']} test listings, {result['n_corrupted']} corrupted: {result['n_flagged']} flags, "
        f"precision {result['precision']:.3f}, recall {result['recall']:.3f} ({result['seconds']} s)"
    )
    if as_json:
        print_json(result)


@app.command("outfits")
def outfits(
    path: Path = typer.Argument(..., help="A Polyvore Outfits folder, or a CSV of (outfit id, product id)."),
    items: Path | None = typer.Option(None, "--items", help="For a CSV: the labelled folder of its products."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: fitb, auc, their baselines, ..."),
) -> None:
    """Outfit compatibility: fill-in-the-blank accuracy and AUC on the test split after training on the train split,
    for the type-aware model, one shared space (untyped) and untrained photo features (baseline)."""
    from sveta.cli._common import settings
    from sveta.cli.learn import staged_progress
    from sveta.eval.outfits import evaluate_outfits

    with staged_progress("photo features") as report:
        result = evaluate_outfits(path, settings(), items, on_progress=report)
    table = Table("model", "FITB", "AUC", title=f"{result['n_fitb']} questions, {result['n_compat']} outfits")
    for label, suffix in (("type-aware", ""), ("untyped", "_untyped"), ("photo features (cosine)", "_baseline")):
        table.add_row(label, f"{result['fitb' + suffix]:.3f}", f"{result['auc' + suffix]:.3f}")
    table.add_row("chance", f"{result['chance_fitb']:.3f}", "0.500")
    console.print(table)
    if as_json:
        print_json(result)
