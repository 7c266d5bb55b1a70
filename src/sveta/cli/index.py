"""`sveta index ...`: build and update the catalog's vector index."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from sveta.cli._common import catalog, console, print_json, progress, settings
from sveta.index.backends import milvus_target, moved_from

if TYPE_CHECKING:
    from sveta.embed.pipeline import PhotoEmbed

app = typer.Typer(help="The catalog's vector index: embed photos, find similar ones fast.", no_args_is_help=True)


@app.command("build")
def build(
    embedder: str | None = typer.Option(
        None, "--embedder", help="Embedder spec (default: the index's, or SVETA_EMBEDDER)."
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="Start from an empty index (e.g. to change embedder)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts and seconds."),
    use_ray: bool = typer.Option(
        False,
        "--ray",
        help="Embed with Ray Data (an actor pool; GPUs where the cluster has them); needs pip install 'sveta\\[ray]'. "
        "`--ray ADDRESS` joins that cluster (same as --ray-address).",
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="The Ray cluster to use with --ray, e.g. ray://host:10001 (default: a local Ray)."
    ),
    ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="Embedding actors with --ray (local Ray: CPUs)."),
) -> None:
    """Fetch missing photos, embed every photo not yet indexed, and save the index atomically.

    When SVETA_INDEX_URL now names another backend than the index was built on, the build starts empty there
    (the vectors come from the embedding cache). With --ray the photos are embedded on Ray (--ray ADDRESS,
    or a local Ray with --ray-workers CPUs), written to Parquet shards in the data home, then loaded
    into the configured index.
    """
    embed = None
    if use_ray or ray_address:
        from sveta.ops.ray_batch import ray_photo_embed

        embed = ray_photo_embed(ray_address or settings().ray_address or None, ray_workers)
    old = None if rebuild else moved_from(settings())
    if old is not None:
        new = milvus_target(settings())
        console.print(
            f"the index moves from {old} to {new.shown if new else 'FAISS'}: building it there from the start"
        )
    _sync(embedder, rebuild or old is not None, as_json, embed)


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


def _sync(embedder: str | None, rebuild: bool, as_json: bool, embed: PhotoEmbed | None = None) -> None:
    from sveta.index.catalog_index import sync_index

    with progress("embedding photos") as bar:
        report = sync_index(
            catalog(), settings(), embedder=embedder, rebuild=rebuild, on_progress=bar.update, embed=embed
        )
    console.print(
        f"index: {report.count} vectors ({report.kind}, {report.embedder}); embedded {report.embedded}, "
        f"metadata updated {report.meta_updated}, removed {report.removed}, unchanged {report.unchanged}, "
        f"unreadable {len(report.failed)} ({report.seconds:.1f} s)"
    )
    for image_id, reason in report.failed[:5]:
        console.print(f"  [red]unreadable[/] image {image_id}: {reason}")
    if as_json:
        print_json(report.as_dict())
