"""CSV / JSONL feeds and folders of photos -> product records (Myntra's styles.csv needs no mapping)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sveta.errors import InputError
from sveta.ingest.pipeline import CrawlState
from sveta.ingest.records import AttributeRecord, ImageRecord, ProductRecord

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")

# Column names each product field is found under, first match wins; --map FIELD=COLUMN overrides.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "product_id", "item_id", "external_id", "sku"),
    "title": ("title", "name", "product_name", "productdisplayname"),
    "description": ("description", "body", "body_html", "details"),
    "brand": ("brand", "vendor", "manufacturer"),
    "product_type": ("product_type", "type"),
    "tags": ("tags", "keywords"),
    "price": ("price", "sale_price"),
    "currency": ("currency",),
    "url": ("url", "link", "product_url"),
    "image": ("image", "image_url", "image_link", "images", "imageurl", "image_path", "filename"),
    "available": ("available", "in_stock", "availability"),
}
# Columns that become seller attributes, with the attribute name they carry (seller words kept verbatim).
ATTRIBUTE_COLUMNS: dict[str, str] = {
    "articletype": "category",
    "category": "category",
    "gender": "gender",
    "basecolour": "colour",
    "colour": "colour",
    "color": "colour",
    "usage": "occasion",
    "occasion": "occasion",
    "season": "season",
    "mastercategory": "master_category",
    "subcategory": "sub_category",
    "pattern": "pattern",
    "material": "material",
    "fit": "fit",
    "sleeve": "sleeve_length",
}
# The columns of Myntra's styles.csv ("Fashion Product Images"), read with no mapping at all.
MYNTRA_COLUMNS = (
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
)
_TRUE = {"1", "true", "yes", "y", "in stock", "in_stock", "available", "t"}


@dataclass
class FeedMapping:
    """Which column holds which product field, and which columns are seller attributes."""

    fields: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)  # column -> attribute name
    brand_from_title: bool = False  # Myntra: the brand is the title's first word

    @classmethod
    def detect(cls, columns: list[str], overrides: Mapping[str, str] | None = None) -> FeedMapping:
        by_lower = {c.lower(): c for c in columns}
        mapping = cls(brand_from_title=set(columns) >= set(MYNTRA_COLUMNS))
        for name, aliases in FIELD_ALIASES.items():
            found = next((by_lower[a] for a in aliases if a in by_lower), None)
            if found:
                mapping.fields[name] = found
        for key, column in by_lower.items():
            if key in ATTRIBUTE_COLUMNS:
                mapping.attributes[column] = ATTRIBUTE_COLUMNS[key]
        for name, column in (overrides or {}).items():
            mapping._override(name, column, columns)
        if "id" not in mapping.fields:
            raise InputError(
                f"the feed has no id column (columns: {', '.join(columns)})", "name it with --map id=COLUMN"
            )
        return mapping

    def _override(self, name: str, column: str, columns: list[str]) -> None:
        if column not in columns:
            raise InputError(
                f"--map {name}={column}: the feed has no column {column!r}",
                f"columns are: {', '.join(columns)}",
            )
        if name in FIELD_ALIASES:
            self.fields[name] = column
        else:  # any other name declares a seller attribute column
            self.attributes[column] = name


@dataclass
class FeedReader:
    """Reads one CSV or JSONL file into records; bad rows are skipped and reported, never fatal."""

    path: Path
    images_dir: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    state: CrawlState = field(default_factory=CrawlState)
    skipped: list[str] = field(default_factory=list)
    _image_index: dict[str, Path] | None = None

    def records(self) -> Iterator[ProductRecord]:
        rows = self._jsonl_rows() if self.path.suffix.lower() in (".jsonl", ".ndjson") else self._csv_rows()
        mappings: dict[tuple[str, ...], FeedMapping] = {}  # JSONL objects may differ in their keys
        for line, row in rows:
            keys = tuple(row)
            if keys not in mappings:
                mappings[keys] = FeedMapping.detect(list(keys), self.overrides)
            record = self._record(row, mappings[keys])
            if record is None:
                self.skipped.append(f"line {line}: no id")
                continue
            yield record
        self.state.pages = 1
        if self.skipped:
            self.state.notes.append(f"skipped {len(self.skipped)} rows: {'; '.join(self.skipped[:5])}")

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with _open_text(self.path) as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise InputError(
                    f"{self.path} is empty or has no header row", "the first line must name the columns"
                )
            last = reader.fieldnames[-1]
            for row in reader:
                extra = row.pop(None, None)
                if extra:  # an unquoted comma in the last column (Myntra titles have some)
                    row[last] = ",".join([row[last] or "", *extra])
                yield reader.line_num, row

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with _open_text(self.path) as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    if number == 1:
                        raise InputError(
                            f"{self.path} is not JSON Lines: line 1: {exc.msg}",
                            "give one JSON object per line, or a .csv file",
                        ) from exc
                    self.skipped.append(f"line {number}: invalid JSON ({exc.msg})")
                    continue
                if isinstance(row, dict):
                    yield number, row
                else:
                    self.skipped.append(f"line {number}: not a JSON object")

    def _record(self, row: Mapping[str, Any], mapping: FeedMapping) -> ProductRecord | None:
        get = lambda name: _text(row.get(mapping.fields.get(name, ""), None))  # noqa: E731
        external_id = get("id")
        if not external_id:
            return None
        title = get("title") or external_id
        attributes = [
            AttributeRecord(name=attr, value=value, origin="seller", evidence=column)
            for column, attr in mapping.attributes.items()
            if (value := _text(row.get(column)))
        ]
        return ProductRecord(
            external_id=external_id,
            title=title,
            description=get("description"),
            brand=get("brand") or (title.split()[0] if mapping.brand_from_title and title else None),
            product_type=get("product_type"),
            tags=_tags(row.get(mapping.fields.get("tags", ""))),
            price=_price(get("price")),
            currency=get("currency"),
            url=get("url"),
            available=_available(row.get(mapping.fields.get("available", ""))),
            raw=dict(row),
            attributes=attributes,
            images=self._images(external_id, row.get(mapping.fields.get("image", ""))),
        )

    def _images(self, external_id: str, value: Any) -> list[ImageRecord]:
        refs = _image_refs(value)
        if not refs:
            found = self._image_for_id(external_id)
            refs = [found.as_uri()] if found else []
        return [ImageRecord(url=self._resolve(ref), position=i) for i, ref in enumerate(refs)]

    def _resolve(self, ref: str) -> str:
        if re.match(r"^(https?|file)://", ref):
            return ref
        base = self.images_dir or self.path.parent
        return (base / ref).resolve().as_uri()

    def _image_for_id(self, external_id: str) -> Path | None:
        if self.images_dir is None:
            return None
        if self._image_index is None:  # one directory listing instead of a stat per product and suffix
            self._image_index = {
                p.stem: p.resolve() for p in self.images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            }
        return self._image_index.get(external_id)


def read_folder(root: Path, state: CrawlState | None = None) -> Iterator[ProductRecord]:
    """One sub-folder per category; every photo is a product whose category is its folder's name."""
    if not root.is_dir():
        raise InputError(
            f"{root} is not a folder", "give a folder with one sub-folder of photos per category"
        )
    photos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise InputError(
            f"no photos found under {root}", f"expected files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    for photo in photos:
        relative = photo.relative_to(root)
        category = relative.parts[0] if len(relative.parts) > 1 else None
        yield ProductRecord(
            external_id=relative.as_posix(),
            title=re.sub(r"[_\-]+", " ", photo.stem).strip() or photo.stem,
            product_type=category,
            attributes=[AttributeRecord("category", category, evidence="folder")] if category else [],
            images=[ImageRecord(url=photo.resolve().as_uri())],
            raw={"path": relative.as_posix()},
        )
    if state is not None:
        state.pages = 1


def _open_text(path: Path) -> TextIO:
    if not path.is_file():
        raise InputError(f"feed file not found: {path}", "check the path")
    head = path.read_bytes()[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html")):
        raise InputError(f"{path} is an HTML page, not a feed", "download the CSV/JSONL file itself")
    return path.open(newline="", encoding="utf-8-sig", errors="replace")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [t.strip() for t in str(value or "").split(",") if t.strip()]


def _price(value: str | None) -> float | None:
    if not value:
        return None
    cleaned = re.sub(r"[^\d.]", "", value.replace(",", ""))
    try:
        return float(cleaned) if cleaned else None
    except ValueError:
        return None


def _available(value: Any) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _image_refs(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v.get("src") or v.get("url")) if isinstance(v, dict) else str(v) for v in value if v]
    return [part.strip() for part in re.split(r"[|\n]", str(value or "")) if part.strip()]
