"""`sveta ingest ...`: Shopify stores, CSV / JSONL feeds and folders of photos into the catalog."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from sveta.cli._common import catalog, console, print_json, progress, settings
from sveta.errors import ConfigError, InputError, SvetaError
from sveta.ingest.pipeline import IngestReport
from sveta.ingest.sources import open_source

app = typer.Typer(
    help="Bring a catalog in: Shopify stores, CSV / JSONL feeds, folders of photos.", no_args_is_help=True
)

_COUNTS = ("pages", "new", "changed", "unchanged", "gone")


@app.command("shopify")
def shopify(
    stores: list[str] = typer.Argument(..., help="Store URLs, e.g. https://shop.example (several allowed)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: pages, new, changed, unchanged, gone."),
) -> None:
    """Crawl Shopify stores' public products.json, politely and incrementally; one failing store does not stop
    the others (the exit code is non-zero if any failed)."""
    reports, failures = [], []
    for url in stores:
        try:
            reports.append(_crawl(url))
        except SvetaError as exc:
            failures.append({"store": url, "error": exc.message, "hint": exc.hint or "", "code": str(exc.exit_code)})
            console.print(f"[bold red]error:[/] {escape(url)}: {escape(exc.message)}")
            if exc.hint:
                console.print(f"[dim]hint:[/] {escape(exc.hint)}")
    if as_json:
        print_json({**_totals(reports), "failed": failures})
    if failures:
        raise typer.Exit(max(int(f["code"]) for f in failures))


def _crawl(url: str) -> IngestReport:
    console.print(f"crawling [bold]{escape(url)}[/] (>= {settings().crawl_delay_s:g} s between requests)")
    shop = open_source("shopify", url, settings=settings(), log=lambda m: console.print(f"  {escape(m)}"))
    with progress("products read") as advance:
        report = shop.ingest(catalog(), on_progress=advance)
    _summary(report, notes=False)  # the crawler logged its notes as they happened
    return report


@app.command("csv")
def csv_feed(
    file: Path = typer.Argument(..., help="The CSV file (Myntra's styles.csv works as it is)."),
    images: Path | None = typer.Option(
        None, "--images", help="Folder of photos named {id}.jpg (default: images/ beside the file)."
    ),
    mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, e.g. --map title=name --map colour=shade."),
    source: str | None = typer.Option(None, "--source", help="Source name (default: csv:<folder>/<file>)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts."),
) -> None:
    """Read a CSV feed: one product per row; unmapped attribute columns become seller attributes."""
    _feed(file, images, mapping, source, "csv", as_json)


@app.command("jsonl")
def jsonl_feed(
    file: Path = typer.Argument(..., help="The JSON Lines file: one product object per line."),
    images: Path | None = typer.Option(None, "--images", help="Folder that relative image paths are resolved in."),
    mapping: list[str] = typer.Option([], "--map", help="FIELD=KEY, e.g. --map title=name."),
    source: str | None = typer.Option(None, "--source", help="Source name (default: jsonl:<folder>/<file>)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts."),
) -> None:
    """Read a JSON Lines feed, with the same field mapping as CSV."""
    _feed(file, images, mapping, source, "jsonl", as_json)


@app.command("folder")
def folder(
    root: Path = typer.Argument(..., help="A folder with one sub-folder of photos per category."),
    source: str | None = typer.Option(None, "--source", help="Source name (default: folder:<name>)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts."),
) -> None:
    """Read folders of photos, one sub-folder per category (each photo becomes a product)."""
    root = root.resolve()
    reader = open_source("folder", str(root), settings=settings(), name=source)
    with progress(f"reading {root.name}") as advance:
        report = reader.ingest(catalog(), on_progress=advance)
    _summary(report)
    if as_json:
        print_json(_totals([report]))


def ingest_feed(
    file: Path, images: Path | None, mapping: list[str], source: str | None, kind: str, quiet: bool = False
) -> IngestReport:
    """Ingest one feed file (shared by `ingest csv`, `ingest jsonl` and `demo`)."""
    file = file.resolve()
    if not file.is_file():  # before the progress bar starts
        raise InputError(f"feed file not found: {file}", "check the path")
    reader = open_source(kind, str(file), settings=settings(), name=source, images=images, mapping=_parse_map(mapping))
    with progress(f"reading {file.name}", total=_count_lines(file), quiet=quiet) as advance:
        return reader.ingest(catalog(), on_progress=advance)


def _feed(file: Path, images: Path | None, mapping: list[str], source: str | None, kind: str, as_json: bool) -> None:
    report = ingest_feed(file, images, mapping, source, kind)
    _summary(report)
    if as_json:
        print_json(_totals([report]))


def _parse_map(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigError(f"--map {pair!r} is not FIELD=COLUMN", "for example --map title=product_name")
        result[field.strip()] = column.strip()
    return result


def _count_lines(file: Path) -> int | None:
    try:
        with file.open("rb") as handle:
            return max(sum(1 for _ in handle) - (1 if file.suffix.lower() == ".csv" else 0), 0)
    except OSError:
        return None


def _summary(report: IngestReport, notes: bool = True) -> None:
    console.print(
        f"[green]{escape(report.source)}[/]: {report.new} new, {report.changed} changed, "
        f"{report.unchanged} unchanged, "
        f"{report.gone} gone ({report.pages} pages, {report.seconds:.1f} s)"
    )
    for note in report.notes if notes else []:
        console.print(f"  note: {escape(note)}")


def _totals(reports: list[IngestReport]) -> dict[str, object]:
    totals: dict[str, object] = {key: sum(getattr(r, key) for r in reports) for key in _COUNTS}
    totals["sources"] = [r.as_dict() for r in reports]
    return totals
