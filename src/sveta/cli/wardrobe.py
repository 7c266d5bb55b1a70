"""`sveta wardrobe`: what a set of photos holds or lacks, and the catalog items that complete the most outfits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, settings


def wardrobe(
    paths: list[Path] = typer.Argument(..., help="Photos, or folders of .jpg / .jpeg / .png / .webp photos."),
    k: int = typer.Option(3, "--k", min=1, help="How many top categories / colours / occasions to report."),
    name: str = typer.Option("catalog", "--name", help="The trained model (see sveta train)."),
    ideas: int = typer.Option(
        0, "--ideas", min=0, help="Also the N catalog items that complete the most outfits with the photos (0: off)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="End with one JSON line: top, lacks, photos, unreadable (and ideas, ideas_skipped)."
    ),
) -> None:
    """Tag a set of photos: the top-k categories, colours and occasions, the common categories it lacks, and with
    --ideas the catalog items that would complete the most outfits with them."""
    from sveta.engines.wardrobe import analyse_wardrobe

    result = analyse_wardrobe(paths, settings(), k=k, name=name)
    table = Table("attribute", *(f"#{i + 1}" for i in range(k)), title=f"{result['n_tagged']} photos")
    for attribute, top in result["top"].items():
        cells = [f"{escape(t['value'])} ({t['count']}, {t['share']:.0%})" for t in top]
        table.add_row(attribute, *cells, *([""] * (k - len(cells))))
    console.print(table)
    lacks = result["lacks"]
    console.print(f"lacks groups: {escape(', '.join(lacks['groups']) or 'none')}")
    console.print(f"lacks common categories: {escape(', '.join(lacks['categories']) or 'none')}")
    for bad in result["unreadable"]:
        console.print(f"[yellow]unreadable:[/] {escape(bad['path'])}: {escape(bad['error'])}")
    if ideas:
        result |= _wardrobe_ideas(paths, ideas, {bad["path"] for bad in result["unreadable"]})
    if as_json:
        print_json(result)


def _wardrobe_ideas(paths: list[Path], n: int, reported: set[str]) -> dict[str, Any]:
    """Print the ideas table (and photos no idea could use, unless already reported); their JSON keys."""
    from sveta.engines.wardrobe_ideas import wardrobe_ideas

    found = wardrobe_ideas(paths, settings(), catalog(), n=n)
    table = Table("outfits", "score", "slot", "id", "title", "reason", title=f"ideas for {len(found.pieces)} pieces")
    for i in found.ideas:
        table.add_row(
            str(i.n_completes), f"{i.score:.3f}", i.slot, i.card.source_id, escape(i.card.title), escape(i.reason)
        )
    console.print(table)
    for bad in found.skipped:
        if bad["path"] not in reported:
            console.print(f"[yellow]no outfit piece:[/] {escape(bad['path'])}: {escape(bad['error'])}")
    return {"ideas": [i.as_dict() for i in found.ideas], "ideas_skipped": found.skipped}
