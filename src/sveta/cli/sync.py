"""`sveta sync [--every 6h]`: re-crawl every registered source, tag new products, update the index in place."""

from __future__ import annotations

import threading

import typer
from rich.markup import escape

from sveta.cli._common import catalog, console, print_json, settings


def sync(
    every: str | None = typer.Option(None, "--every", help="Repeat every DURATION (30m, 6h, 1d) until stopped."),
    as_json: bool = typer.Option(False, "--json", help="After each pass, one JSON line: sources, failed, index."),
) -> None:
    """Bring the catalog up to date with its sources, without the web server: crawl, fetch photos, tag, index.

    Searches running elsewhere keep the old index until the new version is complete (an atomic switch)."""
    from sveta.ops.sync import SyncRun, parse_every, sync_every, sync_once

    def report(run: SyncRun | None, error: Exception | None) -> None:
        if run is None:
            console.print(f"[bold red]sync failed:[/] {escape(str(error))} (trying again next time)")
            return
        new = sum(s["new"] for s in run.sources)
        changed = sum(s["changed"] for s in run.sources)
        console.print(
            f"{len(run.sources)} sources read ({len(run.failed)} failed): {new} new, {changed} changed; "
            f"{run.index.get('embedded', 0)} photos embedded, {run.tagged} tagged; index {run.index.get('count')} "
            f"({run.seconds} s)"
        )
        for failure in run.failed:
            console.print(f"[yellow]{escape(failure['source'])}[/]: {escape(failure['error'])}")
        if as_json:
            print_json(run.as_dict())

    if every is None:
        report(sync_once(catalog(), settings(), log=lambda m: console.print(f"  {escape(m)}")), None)
        return
    seconds = parse_every(every)
    console.print(f"syncing every {every}; stop with Ctrl-C")
    sync_every(catalog(), settings(), seconds, threading.Event(), report)
