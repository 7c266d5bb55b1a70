"""`sveta doctor`: the configured catalog, index, embedder and Ray, checked, each with its fix."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import console, print_json, settings

STYLES = {"OK": "green", "FAIL": "bold red", "warn": "yellow", "skip": "dim"}


def doctor(as_json: bool = typer.Option(False, "--json", help="End with one JSON line of every check.")) -> None:
    """Check the catalog, index, embedder, models and Ray settings; say how to fix what is wrong."""
    from sveta.ops.doctor import all_ok, run_checks

    checks = run_checks(settings())
    table = Table(title="sveta doctor", show_lines=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for c in checks:
        status = f"[{STYLES[c.status]}]{c.status}[/]"
        table.add_row(escape(c.name), status, escape(c.detail), escape(c.fix if c.ok is not True else ""))
    console.print(table)
    ok = all_ok(checks)
    console.print("[green]all required checks pass[/]" if ok else "[bold red]some required checks fail[/]: see fix")
    if as_json:
        print_json({"ok": ok, "checks": [c.as_dict() for c in checks]})
    if not ok:
        raise typer.Exit(1)
