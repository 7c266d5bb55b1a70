"""`sveta rules add|list|remove`: merchandising rules that pin, boost, bury or hide products in results."""

from __future__ import annotations

import typer

app = typer.Typer(help="Merchandising rules: pin, boost, bury or hide products in results.", no_args_is_help=True)
