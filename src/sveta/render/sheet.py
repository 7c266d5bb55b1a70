"""Contact sheets: the query photo and its results in a grid, with titles and scores (the seeds' show())."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TILE = 180
_CAPTION = 54
_PAD = 8
_BG = (255, 255, 255)
_TEXT = (30, 30, 30)
_ACCENT = (200, 40, 40)


@dataclass
class Tile:
    """One picture on the sheet with up to three short caption lines."""

    image: Image.Image | Path | str | None
    caption: str
    score: float | None = None


def contact_sheet(query: Tile, results: Sequence[Tile], out: Path, *, columns: int = 5, title: str = "") -> Path:
    """Draw the query (outlined) then the results, ``columns`` per row, and save a PNG."""
    rows = max(1, -(-len(results) // columns))
    width = _PAD + (columns + 1) * (TILE + _PAD)
    height = 30 + rows * (TILE + _CAPTION + _PAD) + _PAD
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    draw.text((_PAD, 8), title, fill=_TEXT, font=font(16))
    draw_tile(sheet, query, (_PAD, 30), outline=_ACCENT)
    for n, tile in enumerate(results):
        row, col = divmod(n, columns)
        draw_tile(sheet, tile, (_PAD + (col + 1) * (TILE + _PAD), 30 + row * (TILE + _CAPTION + _PAD)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def draw_tile(sheet: Image.Image, tile: Tile, at: tuple[int, int], outline: tuple[int, int, int] | None = None) -> None:
    x, y = at
    picture = _thumbnail(tile.image)
    sheet.paste(picture, (x + (TILE - picture.width) // 2, y + (TILE - picture.height) // 2))
    draw = ImageDraw.Draw(sheet)
    if outline:
        draw.rectangle((x - 2, y - 2, x + TILE + 1, y + TILE + 1), outline=outline, width=3)
    lines = textwrap.wrap(tile.caption, 26)[:2]
    if tile.score is not None:
        lines.append(f"score {tile.score:.3f}")
    for n, line in enumerate(lines):
        draw.text((x, y + TILE + 3 + 16 * n), line, fill=_TEXT, font=font(12))


def _thumbnail(source: Image.Image | Path | str | None) -> Image.Image:
    try:
        image = source if isinstance(source, Image.Image) else Image.open(source) if source else None
    except OSError:
        image = None
    if image is None:
        return Image.new("RGB", (TILE, TILE), (235, 235, 235))
    image = image.convert("RGB")
    image.thumbnail((TILE, TILE))
    return image


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()
