"""`sveta search` and `sveta similar`: visually similar products for a photo, a URL or a catalog product."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
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
from sveta.engines.search import Searcher, SearchResult
from sveta.errors import InputError
from sveta.index.base import Filter

_K = typer.Option(10, "--k", min=1, max=500, help="How many products.")
_JSON = typer.Option(False, "--json", help="End with one JSON line: the query and its matches.")
_SHEET = typer.Option(None, "--sheet", help="Write a contact sheet PNG of the query and its results.")


def search(
    photos: list[str] | None = typer.Argument(
        None, help="Photo files or http(s) URLs (several: products like any of them); or give --text alone."
    ),
    text: str | None = typer.Option(
        None, "--text", help='Words: alone, a search by description; with photos, a refinement ("in red").'
    ),
    k: int = _K,
    category: str = typer.Option("auto", "--category", help="auto (predicted from neighbours), a name, or 'any'."),
    gender: list[str] | None = GENDER,
    colour: list[str] | None = COLOUR,
    brand: list[str] | None = BRAND,
    source: list[str] | None = SOURCE,
    price_min: float | None = PRICE_MIN,
    price_max: float | None = PRICE_MAX,
    in_stock: bool = IN_STOCK,
    as_json: bool = _JSON,
    sheet: Path | None = _SHEET,
) -> None:
    """Products that look like photos (refined by --text), or that match --text, with filters.

    Words are read as words: category, colour and its shades, gender, brand, price words and "not ..." become
    filters and boosts, fused with keyword and look-alike ranks; --json shows what was understood and why each
    result matched.
    """
    flt = _filter(gender, colour, brand, source, price_min, price_max, in_stock)
    if not photos and text is None:
        raise InputError("give a photo or --text", 'e.g. sveta search shirt.jpg --text "in red", or --text "red dress"')
    if not photos:
        assert text is not None
        # a description names its category itself: predicting one from neighbours adds nothing
        result = _searcher().search_text(text, k, flt, None if category in ("any", "auto") else category)
        _show(result, None, as_json, sheet)
        return
    result = _searcher().search_photo(photos, k, flt, None if category == "any" else category, text=text)
    _show(result, next((p for p in photos if not p.startswith("http")), None), as_json, sheet)


def similar(
    product: str = typer.Argument(..., help="A catalog id or the source's own id (e.g. a Myntra id)."),
    k: int = _K,
    category: str = typer.Option("any", "--category", help="'any' (default), auto (predicted), or a name."),
    gender: list[str] | None = GENDER,
    colour: list[str] | None = COLOUR,
    brand: list[str] | None = BRAND,
    source: list[str] | None = SOURCE,
    price_min: float | None = PRICE_MIN,
    price_max: float | None = PRICE_MAX,
    in_stock: bool = IN_STOCK,
    as_json: bool = _JSON,
    sheet: Path | None = _SHEET,
) -> None:
    """Products that look like a catalog product (the product itself excluded)."""
    flt = _filter(gender, colour, brand, source, price_min, price_max, in_stock)
    searcher = _searcher()
    result = searcher.similar(product, k, flt, None if category == "any" else category)
    _show(result, _product_photo(searcher, product), as_json, sheet)


def _searcher() -> Searcher:
    return Searcher(settings(), catalog())


def _filter(
    gender: list[str] | None,
    colour: list[str] | None,
    brand: list[str] | None,
    source: list[str] | None,
    price_min: float | None,
    price_max: float | None,
    in_stock: bool,
) -> Filter:
    return Filter.of(
        gender=gender,
        colour=colour,
        brand=brand,
        source=source,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
    )


def _product_photo(searcher: Searcher, product: str) -> str | None:
    from sveta.catalog.queries import product_cards, resolve_product

    product_id = resolve_product(searcher.catalog, product)
    card = product_cards(searcher.catalog, [product_id]).get(product_id)
    return card.image_path if card else None


def _show(result: SearchResult, query_photo: str | None, as_json: bool, sheet: Path | None) -> None:
    used = f" in category {result.category}" + (" (predicted)" if result.predicted else "") if result.category else ""
    table = Table("#", "score", "id", "title", "category", "colour", "price", "why", title=f"{result.query}{used}")
    for n, m in enumerate(result.matches, 1):
        c = m.card
        row = (c.source_id, c.title, c.category or "", c.colour or "", _price(c.price), "; ".join(m.why))
        table.add_row(str(n), f"{m.score:.3f}", *row)
    if result.understood:
        console.print("understood: " + _understood(result.understood))
    console.print(table)
    if sheet is not None:
        _write_sheet(result, query_photo, sheet)
    if as_json:
        print_json(result.as_dict())


def _write_sheet(result: SearchResult, query_photo: str | None, out: Path) -> None:
    from sveta.render.sheet import Tile, contact_sheet

    tiles = [Tile(m.card.image_path, m.card.title, m.score) for m in result.matches]
    contact_sheet(Tile(query_photo, "query"), tiles, out, title=result.query)
    console.print(f"wrote {out}")


def _understood(understood: dict[str, Any]) -> str:
    spans: list[dict[str, Any]] = understood.get("spans") or []
    parts = [f"{s['key']}={s['value']} ({s['words']!r})" for s in spans]
    return ", ".join(parts) or "nothing (keywords and look-alikes only)"


def _price(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
