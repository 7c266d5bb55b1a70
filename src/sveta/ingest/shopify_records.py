"""Shopify products.json product -> ProductRecord: options, string prices, images, body_html as text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sveta.catalog.records import ImageRecord, ProductRecord, VariantRecord
from sveta.vocab.html_text import html_to_text

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
    """One products.json product as a ProductRecord (the raw JSON is kept)."""
    handle = raw.get("handle") or None
    option_names = _option_names(raw.get("options"))
    raw_variants = [v for v in raw.get("variants") or [] if isinstance(v, dict)]
    variants = [_variant(v, option_names, i) for i, v in enumerate(raw_variants)]
    return ProductRecord(
        external_id=str(raw["id"]),
        title=str(raw.get("title") or handle or raw["id"]),
        handle=handle,
        description=html_to_text(raw.get("body_html")),
        brand=raw.get("vendor") or None,
        product_type=raw.get("product_type") or None,
        tags=_tags(raw.get("tags")),
        currency=None,  # products.json does not say; the store's currency is on its pages only
        url=f"{base_url}/products/{handle}" if handle else None,
        available=any(v.available for v in variants),
        created_at=_datetime(raw.get("created_at")),
        updated_at=_datetime(raw.get("updated_at")),
        raw=raw,
        variants=variants,
        images=[_image(img, i) for i, img in enumerate(raw.get("images") or []) if _has_src(img)],
    )


def _option_names(options: object) -> list[str]:
    names = []
    for option in options if isinstance(options, list) else []:
        name = option.get("name") if isinstance(option, dict) else option
        names.append(str(name or ""))
    return names


def _variant(raw: dict[str, Any], option_names: list[str], index: int) -> VariantRecord:
    options: dict[str, str] = {}
    for i in range(3):
        value = raw.get(f"option{i + 1}")
        if value in (None, ""):
            continue
        name = option_names[i] if i < len(option_names) and option_names[i] else f"Option {i + 1}"
        if name == "Title" and value == "Default Title":  # Shopify's placeholder for "no options"
            continue
        options[name] = str(value)
    return VariantRecord(
        external_id=str(raw.get("id")),
        title=raw.get("title") or None,
        options=options,
        size=_option_value(options, _SIZE_NAMES),
        colour=_option_value(options, _COLOUR_NAMES),
        sku=raw.get("sku") or None,
        price=_money(raw.get("price")),
        compare_at_price=_money(raw.get("compare_at_price")),
        available=bool(raw.get("available", True)),
        position=int(raw.get("position") or index + 1),
    )


def _option_value(options: dict[str, str], names: set[str]) -> str | None:
    return next((value for name, value in options.items() if name.strip().lower() in names), None)


def _image(raw: dict[str, Any], index: int) -> ImageRecord:
    src = str(raw["src"])
    return ImageRecord(
        url="https:" + src if src.startswith("//") else src,  # older themes give protocol-relative URLs
        position=int(raw.get("position") or index + 1),
        width=raw.get("width"),
        height=raw.get("height"),
        alt=raw.get("alt") or None,
        variant_ids=[str(v) for v in raw.get("variant_ids") or []],
    )


def _has_src(raw: object) -> bool:
    # Only web URLs: a store must not be able to point the image cache at local files (file://).
    if not isinstance(raw, dict) or not raw.get("src"):
        return False
    return str(raw["src"]).lower().startswith(("https://", "http://", "//"))


def _tags(tags: object) -> list[str]:
    # Current stores send an array; older ones a comma-separated string.
    items = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    return [str(t).strip() for t in items if str(t).strip()]


def _money(value: object) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
