"""Shopify products.json product -> ProductRecord: options, string prices, images, body_html as text."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sveta.catalog.models import MAX_ID
from sveta.catalog.records import ImageRecord, ProductRecord, VariantRecord
from sveta.vocab.html_text import html_to_text, storable

# Option names stores use for size and colour (compared lower-cased).
_SIZE_NAMES = {
    "size",
    "sizes",
    "taille",
    "größe",
    "grösse",
    "groesse",
    "talla",
    "taglia",
    "maat",
    "storlek",
    "størrelse",
    "koko",
    "rozmiar",
    "tamanho",
    "beden",
    "サイズ",
    "尺码",
}
_COLOUR_NAMES = {
    "colour",
    "color",
    "colours",
    "colors",
    "couleur",
    "farbe",
    "kleur",
    "colore",
    "färg",
    "farge",
    "farve",
    "väri",
    "kolor",
    "cor",
    "renk",
    "カラー",
    "颜色",
}


def product_record(raw: dict[str, Any], base_url: str) -> ProductRecord:
    """One products.json product as a ProductRecord (the raw JSON is kept). A store's JSON is untrusted: a value of
    the wrong type is read as missing, never as a crash or a wrongly typed field."""
    external_id = storable(str(raw["id"]))
    handle = _text(raw.get("handle"))
    option_names = _option_names(raw.get("options"))
    raw_variants = [v for v in _list(raw.get("variants")) if isinstance(v, dict)]
    variants = [_variant(v, option_names, i) for i, v in enumerate(raw_variants)]
    return ProductRecord(
        external_id=external_id,
        title=_text(raw.get("title")) or handle or external_id,
        handle=handle,
        description=html_to_text(raw.get("body_html")),
        brand=_text(raw.get("vendor")),
        product_type=_text(raw.get("product_type")),
        tags=_tags(raw.get("tags")),
        currency=None,  # products.json does not say; the store's currency is on its pages only
        url=f"{base_url}/products/{handle}" if handle else None,
        available=any(v.available for v in variants),
        created_at=_datetime(raw.get("created_at")),
        updated_at=_datetime(raw.get("updated_at")),
        raw=raw,
        variants=variants,
        images=[_image(img, i) for i, img in enumerate(_list(raw.get("images"))) if _has_src(img)],
    )


def _option_names(options: object) -> list[str]:
    names = []
    for option in _list(options):
        name = option.get("name") if isinstance(option, dict) else option
        names.append(_text(name) or "")
    return names


def _variant(raw: dict[str, Any], option_names: list[str], index: int) -> VariantRecord:
    options: dict[str, str] = {}
    for i in range(3):
        value = _text(raw.get(f"option{i + 1}"))
        if value is None:
            continue
        name = option_names[i] if i < len(option_names) and option_names[i] else f"Option {i + 1}"
        if name == "Title" and value == "Default Title":  # Shopify's placeholder for "no options"
            continue
        options[name] = value
    return VariantRecord(
        external_id=storable(str(raw.get("id"))),
        title=_text(raw.get("title")),
        options=options,
        size=_option_value(options, _SIZE_NAMES),
        colour=_option_value(options, _COLOUR_NAMES),
        sku=_text(raw.get("sku")),
        price=_money(raw.get("price")),
        compare_at_price=_money(raw.get("compare_at_price")),
        available=bool(raw.get("available", True)),
        position=_count(raw.get("position")) or index + 1,
    )


def _option_value(options: dict[str, str], names: set[str]) -> str | None:
    return next((value for name, value in options.items() if name.strip().lower() in names), None)


def _image(raw: dict[str, Any], index: int) -> ImageRecord:
    src = str(raw["src"])
    return ImageRecord(
        url="https:" + src if src.startswith("//") else src,  # older themes give protocol-relative URLs
        position=_count(raw.get("position")) or index + 1,
        width=_count(raw.get("width")),
        height=_count(raw.get("height")),
        alt=_text(raw.get("alt")),
        variant_ids=[v for v in map(_text, _list(raw.get("variant_ids"))) if v],
    )


def _has_src(raw: object) -> bool:
    # Only web URLs: a store must not be able to point the image cache at local files (file://).
    if not isinstance(raw, dict) or not isinstance(raw.get("src"), str):
        return False
    return raw["src"].lower().startswith(("https://", "http://", "//")) and storable(raw["src"]) == raw["src"]


def _tags(tags: object) -> list[str]:
    # Current stores send an array; older ones a comma-separated string.
    items = tags.split(",") if isinstance(tags, str) else _list(tags)
    return [tag for tag in map(_text, items) if tag]


def _text(value: object) -> str | None:
    """A string or a number as storable text; None for anything else (an object, a list, null, "")."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return storable(str(value)).strip() or None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: object) -> int | None:
    """A position or a size in pixels: a whole number in the catalog's range, else None."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_ID else None


def _money(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    try:
        amount = float(str(value).replace(",", ""))
    except (ValueError, OverflowError):
        return None
    return amount if math.isfinite(amount) and amount >= 0 else None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
