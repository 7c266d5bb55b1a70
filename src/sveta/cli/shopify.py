"""`sveta shopify push URL`: the attributes sveta found, written to a Shopify store's product metafields."""

from __future__ import annotations

import typer

app = typer.Typer(help="Write what sveta found back to a Shopify store.", no_args_is_help=True)
