"""`sveta export attributes OUT`: what sveta found per product, as CSV, JSONL or a Shopify product CSV."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, settings

app = typer.Typer(help="Export what sveta found, for a shop to import.", no_args_is_help=True)


@app.command("attributes")
def attributes(
    out: Path = typer.Argument(..., help="The file to write (refused if it exists, unless --force)."),
    fmt: str = typer.Option("csv", "--format", help="csv (one row per product), jsonl, or shopify (product CSV)."),
    min_confidence: float = typer.Option(0.8, "--min-confidence", help="Guesses below this are left out (0-1)."),
    source: str | None = typer.Option(None, "--source", help="Only this source's products."),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="Only products changed or tagged since this ISO date or time (UTC if no zone)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
    audit: bool = typer.Option(True, "--audit/--no-audit", help="Add the listing audit's findings (needs a model)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: rows, columns, values, audit."),
) -> None:
    """Each product's source id, handle and attributes (seller values first, guesses at the threshold), with
    origin, confidence and model version, and the audit's findings; written whole or not at all."""
    from sveta.ops.export import export_attributes, parse_since

    since = parse_since(changed_since) if changed_since is not None else None
    report = export_attributes(
        catalog(), settings(), out, fmt=fmt, min_confidence=min_confidence, source=source,
        changed_since=since, force=force, audit=audit,
    )  # fmt: skip
    table = Table("attribute", "values", "seller", "text", "photo")
    for name, n in report.values.items():
        by = report.origins.get(name, {})
        table.add_row(escape(name), str(n), *(str(by.get(o, 0)) for o in ("seller", "text", "photo")))
    console.print(table)
    console.print(
        f"wrote {escape(report.path)}: {report.rows} rows, {len(report.columns)} columns ({report.format}, "
        f"guesses >= {report.min_confidence:g}) in {report.seconds:.1f} s"
    )
    if report.handles_from_source_id:
        console.print(f"{report.handles_from_source_id} products have no handle: their source id stands in")
    if not report.audit.get("included"):
        console.print(f"[dim]no audit findings: {escape(str(report.audit.get('reason')))}[/]")
    if as_json:
        print_json(report.as_dict())
