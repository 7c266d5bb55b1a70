"""`sveta report searches`: what shoppers searched, found, missed and clicked, from the recorded insights."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, settings
from sveta.ops.insights_report import report_tables, searches_report, summary

app = typer.Typer(help="Reports on how the catalog is used.", no_args_is_help=True)


@app.command("searches")
def searches(
    since: str = typer.Option("7d", "--since", help="How far back: 30m, 12h, 7d, 4w, or a date (2026-12-01)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object (keys: window, searches, clicks, by_kind, top_queries, ...)."
    ),
    top: int = typer.Option(20, "--top", help="Rows per list (top queries, zero-result and no-click queries)."),
) -> None:
    """Top queries, queries that found nothing, queries with no clicks, click-through by surface, busiest hours.

    Searches and clicks are recorded by the API (no address, no user id) and kept for SVETA_INSIGHTS_DAYS days.
    """
    report = searches_report(catalog(), since, top=top)
    if as_json:
        print_json(report)
        return
    console.print(summary(report))
    if settings().insights_days == 0:
        console.print("[yellow]SVETA_INSIGHTS_DAYS is 0: the API records no searches[/]")
    for part in report_tables(report, top):
        if not part.rows:
            console.print(f"[dim]{part.title}: none[/]")
            continue
        table = Table(*part.columns, title=part.title, title_justify="left")
        for row in part.rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        console.print(table)
