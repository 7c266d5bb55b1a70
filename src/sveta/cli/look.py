"""`sveta look PHOTO`: the garments a person wears in a photo (or a product shot's item) and their top matches."""

from __future__ import annotations

from pathlib import Path

import typer
from PIL import Image, ImageDraw
from rich.table import Table

from sveta.cli._common import (
    BRAND,
    COLOUR,
    GENDER,
    IN_STOCK,
    PRICE_MAX,
    PRICE_MIN,
    SOURCE,
    catalog,
    console,
    print_json,
    settings,
)
from sveta.engines.look import Looker, LookResult
from sveta.engines.search import Searcher
from sveta.index.base import Filter

_COLOURS = {"upper": (220, 40, 40), "lower": (40, 90, 220), "full": (150, 40, 180), "feet": (30, 150, 60)}


def look(
    photo: Path = typer.Argument(..., help="A photo of a person (or a product shot)."),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Matches per garment."),
    category: list[str] | None = typer.Option(
        None, "--category", help="Search every garment in this category instead of its own likeliest ones; repeatable."
    ),
    gender: list[str] | None = GENDER,
    colour: list[str] | None = COLOUR,
    brand: list[str] | None = BRAND,
    source: list[str] | None = SOURCE,
    price_min: float | None = PRICE_MIN,
    price_max: float | None = PRICE_MAX,
    in_stock: bool = IN_STOCK,
    assume: bool = typer.Option(
        True, "--assume/--no-assume", help="Put the gender the wearer seems to be first (--gender overrides it)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="End with one JSON line: the garments and their matches (and the filters given)."
    ),
    sheet: Path | None = typer.Option(None, "--sheet", help="Write a PNG: the photo with boxes, matches per garment."),
) -> None:
    """Find each garment (upper / lower / full / feet per person, or the product), tag it, search its categories.

    The filters (gender, colour, brand, source, price, stock) narrow every garment's matches, in its own categories
    (or in --category's). Without --gender, a person's matches show the gender they seem to be first (the others
    fill up); the answer says what it assumed, and --no-assume turns that off.
    """
    flt = Filter.of(
        gender=gender,
        colour=colour,
        brand=brand,
        source=source,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
    )
    flt.category = category or None
    result = Looker(Searcher(settings(), catalog())).look(photo, k, flt, assume)
    table = Table("region", "box", "category", "colour", "top matches", title=f"{photo}: {result.message}")
    for g in result.garments:
        tops = "; ".join(f"{m.card.title} ({m.score:.2f})" for m in g.matches[:3])
        table.add_row(g.region, str(list(g.box)), f"{g.category} {g.confidence:.2f}", g.colour, tops)
    console.print(table)
    if result.assumed:
        console.print(f"assumed: {result.assumed['gender']} ({result.assumed['confidence']:.2f}); --gender to change")
    if sheet is not None:
        write_sheet(result, photo, sheet)
        console.print(f"wrote {sheet}")
    if as_json:
        print_json(result.as_dict())


def write_sheet(result: LookResult, photo: Path, out: Path) -> Path:
    """The photo with each garment's box on the left; per garment a row: its crop, then its matches."""
    from sveta.render.sheet import TILE, Tile, draw_tile, font

    row_h, pad = TILE + 60, 8
    with Image.open(photo) as opened:
        picture = opened.convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(3, picture.width // 250)
    for g in result.garments:
        colour = _COLOURS.get(g.region, (200, 120, 0))
        draw.rectangle(g.box, outline=colour, width=width)
        draw.text((g.box[0] + 2 * width, g.box[1] + 2 * width), g.region, fill=colour, font=font(max(14, width * 8)))
    rows = max(1, len(result.garments))
    height = 30 + rows * (row_h + pad)
    picture.thumbnail((height * picture.width // picture.height, height - 30))
    columns = 1 + max((len(g.matches) for g in result.garments), default=0)
    sheet = Image.new("RGB", (picture.width + pad * 2 + columns * (TILE + pad), height), (255, 255, 255))
    ImageDraw.Draw(sheet).text((pad, 8), f"{photo.name}: {result.message}", fill=(30, 30, 30), font=font(16))
    sheet.paste(picture, (pad, 30))
    left = picture.width + 2 * pad
    for n, g in enumerate(result.garments):
        y = 30 + n * (row_h + pad)
        label = f"{g.region}: {g.category or '?'}, {g.colour}"
        draw_tile(sheet, Tile(g.crop, label), (left, y), outline=_COLOURS.get(g.region, (200, 120, 0)))
        for c, m in enumerate(g.matches, 1):
            draw_tile(sheet, Tile(m.card.image_path, m.card.title, m.score), (left + c * (TILE + pad), y))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
