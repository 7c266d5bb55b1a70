"""`sveta images ...`: warm the lazy image cache."""

from __future__ import annotations

import typer

from sveta.catalog.models import MAX_ID
from sveta.cli._common import catalog, console, print_json, progress, settings
from sveta.images.cache import FetchReport, ImageCache, warm_cache

app = typer.Typer(help="The image cache: photos are fetched on first need; `fetch` warms it.", no_args_is_help=True)

_SHOWN_FAILURES = 10


@app.command("fetch")
def fetch(
    retry_broken: bool = typer.Option(False, "--retry-broken", help="Also retry images recorded as broken."),
    limit: int | None = typer.Option(None, "--limit", min=1, max=MAX_ID, help="Fetch at most N images."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line of counts and seconds."),
) -> None:
    """Download, check and cache the catalog's images; a broken image is recorded, never fatal."""
    with ImageCache(settings()) as cache, progress("fetching images") as bar:
        report = warm_cache(catalog(), cache, retry_broken=retry_broken, limit=limit, on_progress=bar.update)
    _summary(report, retry_broken)
    if as_json:
        print_json({k: getattr(report, k) for k in ("cached", "broken", "skipped", "seconds")})


def _summary(report: FetchReport, retry_broken: bool) -> None:
    console.print(
        f"[green]{report.cached} cached[/], {report.broken} broken, {report.skipped} skipped ({report.seconds:.1f} s)"
    )
    for url, reason in report.failures[:_SHOWN_FAILURES]:
        console.print(f"  [red]broken[/] {url}: {reason}", soft_wrap=True)
    if len(report.failures) > _SHOWN_FAILURES:
        console.print(f"  ... and {len(report.failures) - _SHOWN_FAILURES} more")
    if report.skipped and not retry_broken:
        console.print("  skipped images were broken before or over --limit; add --retry-broken to retry them")
