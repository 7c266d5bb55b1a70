"""`sveta index ...`: build and update the catalog's vector index."""

from __future__ import annotations

import typer

from sveta.cli._common import catalog, console, print_json, progress, settings

app = typer.Typer(help="The catalog's vector index: embed photos, find similar ones fast.", no_args_is_help=True)


@app.command("build")
def build(
    embedder: str | None = typer.Option(
        None, "--embedder", help="Embedder spec (default: the index's, or SVETA_EMBEDDER)."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Start from an empty index (e.g. to change embedder)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts and seconds."),
) -> None:
    """Fetch missing photos, embed every photo not yet indexed, and save the index atomically."""
    _sync(embedder, rebuild, as_json)


@app.command("update")
def update(as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts and seconds.")) -> None:
    """Embed only new or changed photos, refresh filters, drop what left the catalog."""
    _sync(None, False, as_json)


@app.command("info")
def info(as_json: bool = typer.Option(False, "--json", help="Print the index config as JSON.")) -> None:
    """What the index holds and what made it."""
    from dataclasses import asdict

    from sveta.index.catalog_index import index_config

    config = index_config(settings())
    if config is None:
        console.print("no index yet: run `sveta index build`")
        raise typer.Exit(1)
    console.print(
        f"{config.count} vectors, {config.kind}, {config.metric}, embedder {config.embedder} ({config.dim}-d)"
    )
    if as_json:
        print_json(asdict(config))


def _sync(embedder: str | None, rebuild: bool, as_json: bool) -> None:
    from sveta.index.catalog_index import sync_index

    with progress("embedding photos") as bar:
        report = sync_index(catalog(), settings(), embedder=embedder, rebuild=rebuild, on_progress=bar.update)
    console.print(
        f"index: {report.count} vectors ({report.kind}, {report.embedder}); embedded {report.embedded}, "
        f"metadata updated {report.meta_updated}, removed {report.removed}, unchanged {report.unchanged}, "
        f"unreadable {len(report.failed)} ({report.seconds:.1f} s)"
    )
    for image_id, reason in report.failed[:5]:
        console.print(f"  [red]unreadable[/] image {image_id}: {reason}")
    if as_json:
        print_json(report.as_dict())
