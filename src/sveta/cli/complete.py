"""`sveta complete PRODUCT_ID|PHOTO`: the best items of each complementary outfit slot, with scores and reasons."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, settings
from sveta.engines.complete import Completer, CompleteResult, piece_of_photo
from sveta.engines.search import Searcher


def complete(
    piece: str = typer.Argument(..., help="A catalog id, the source's own id (e.g. a Myntra id), or a photo file."),
    k: int = typer.Option(3, "--k", min=1, max=50, help="How many items per slot."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: the piece and its items."),
    sheet: Path | None = typer.Option(None, "--sheet", help="Write a contact sheet PNG of the piece and its items."),
) -> None:
    """Complete the look: for a product or a photo, the best bottoms, shoes, outerwear, bags and accessories."""
    searcher = Searcher(settings(), catalog())
    completer = Completer(searcher.catalog, searcher.index, searcher.settings)
    what = piece_of_photo(completer, searcher, Path(piece)) if Path(piece).is_file() else None
    result = completer.complete(what or completer.piece_of_product(piece), k)
    _show(result)
    if sheet is not None:
        _write_sheet(result, searcher, sheet)
    if as_json:
        print_json(result.as_dict())


def _show(result: CompleteResult) -> None:
    p = result.piece
    about = ", ".join(v for v in (p.gender, p.occasion, p.season, p.colour, p.category) if v)
    table = Table("slot", "score", "id", "title", "reason", title=f"{p.label}: {about} ({result.ms:.1f} ms)")
    for s in result.items:
        table.add_row(s.slot, f"{s.score:.3f}", s.card.source_id, escape(s.card.title), escape(s.reason))
    console.print(table)


def _write_sheet(result: CompleteResult, searcher: Searcher, out: Path) -> None:
    from sveta.catalog.queries import product_cards
    from sveta.render.sheet import Tile, contact_sheet

    p = result.piece
    photo = p.image_path
    if photo is None and p.product_id is not None:
        card = product_cards(searcher.catalog, [p.product_id]).get(p.product_id)
        photo = card.image_path if card else None
    tiles = [Tile(s.card.image_path, f"{s.slot}: {s.card.title}", s.score) for s in result.items]
    columns = max((sum(s.slot == slot for s in result.items) for slot in result.slots), default=1)
    contact_sheet(Tile(photo, p.category or "piece"), tiles, out, columns=max(columns, 1), title=f"complete {p.label}")
    console.print(f"wrote {out}")
