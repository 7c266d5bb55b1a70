"""`sveta report searches`: what shoppers searched, found, missed and clicked, from the recorded insights."""

from __future__ import annotations

import typer

app = typer.Typer(help="Reports on how the catalog is used.", no_args_is_help=True)
