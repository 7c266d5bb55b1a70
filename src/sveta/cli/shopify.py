"""`sveta shopify push URL`: the attributes sveta found, written to a Shopify store's product metafields."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, settings

if TYPE_CHECKING:
    from sveta.ops.shopify_push import PushReport

app = typer.Typer(help="Write what sveta found back to a Shopify store.", no_args_is_help=True)


@app.command("push")
def push(
    url: str = typer.Argument(..., help="The store: shop.myshopify.com or https://shop.myshopify.com."),
    token_env: str = typer.Option(
        ..., "--token-env", help="The environment variable holding the Admin API access token (never echoed)."
    ),
    apply: bool = typer.Option(False, "--apply", help="Write to the store; without it nothing is written anywhere."),
    min_confidence: float = typer.Option(0.8, "--min-confidence", help="Guesses below this are left out (0-1)."),
    source: str | None = typer.Option(None, "--source", help="Only this source's products."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: counts, gone, errors, requests, cost."),
) -> None:
    """The sveta.* metafields `sveta export attributes --format shopify` writes (seller values first, guesses at the
    threshold), compared with the store's and, with --apply, set through the Admin API (metafieldsSet, 25 a call),
    paced by the store's rate limit. A rerun after an interruption writes nothing twice."""
    from sveta.ops.shopify_push import push_attributes
    from sveta.settings import environment_secret

    token = environment_secret(token_env)
    report = push_attributes(
        catalog(), settings(), url, token, apply=apply, min_confidence=min_confidence, source=source
    )
    _show(report)
    if as_json:
        print_json(report.as_dict())


def _show(report: PushReport) -> None:
    table = Table("metafields", "count")
    for kind, n in report.metafields.items():
        table.add_row(kind, str(n))
    console.print(table)
    changed = report.metafields["create"] + report.metafields["update"]
    done = f"wrote {report.written} of {changed} metafields" if report.apply else f"{changed} metafields to write"
    console.print(
        f"{escape(report.store)}: {report.products} products, {done}; {report.requests} requests to the store, "
        f"{report.throttled_waits} waits for its rate limit ({report.waited_s:.1f} s); {report.seconds:.1f} s in all"
    )
    if report.gone:
        shown = ", ".join(escape(h) for h in report.gone[:5]) + (" ..." if len(report.gone) > 5 else "")
        console.print(f"{len(report.gone)} products are not on the store (deleted, or another handle): {shown}")
    for error in report.errors[:10]:
        console.print(f"[red]refused[/] {escape(error['handle'])} {escape(error['key'])}: {escape(error['message'])}")
    if len(report.errors) > 10:
        console.print(f"... and {len(report.errors) - 10} more refusals (see --json)")
    if not report.apply and changed:
        console.print("[dim]nothing was written: add --apply to write these to the store[/]")
