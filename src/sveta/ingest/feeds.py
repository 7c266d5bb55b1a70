"""CSV / JSONL feeds and folders of photos -> product records (Myntra's styles.csv needs no mapping)."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote_from_bytes

from sveta.catalog.records import AttributeRecord, ImageRecord, ProductRecord, SourceRow
from sveta.errors import InputError
from sveta.ingest.feed_values import (
    clean_text,
    csv_error,
    csv_row,
    image_refs,
    parse_available,
    parse_price,
    quote_line,
    tag_list,
)
from sveta.ingest.pipeline import CrawlState

_URL = re.compile(r"^(https?|file)://")
READER_VERSION = 1  # bump when a row is read into a different record: every product is then rebuilt once
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
# A CSV record longer than this is a stray quote swallowing the rows after it, not a long description.
MAX_RECORD_LINES = 100
# Byte order marks, UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass
class FeedMapping:
    """Which column holds which product field, and which columns are seller attributes."""

    fields: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)  # column -> attribute name
    brand_from_title: bool = False  # Myntra: the brand is the title's first word

    @classmethod
    def detect(
        cls, columns: list[str], overrides: Mapping[str, str] | None = None, *, strict: bool = True
    ) -> FeedMapping:
        """With ``strict`` (a CSV header) a missing id or --map column is an error; JSONL rows that omit
        keys are not (JSON leaves empty keys out), so there such a row just has no value."""
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
            mapping._override(name, column, columns if strict else None)
        if strict and "id" not in mapping.fields:
            raise InputError(
                f"the feed has no id column (columns: {', '.join(columns)})", "name it with --map id=COLUMN"
            )
        return mapping

    def _override(self, name: str, column: str, columns: list[str] | None) -> None:
        if columns is not None and column not in columns:
            raise InputError(
                f"--map {name}={column}: the feed has no column {column!r}", f"columns are: {', '.join(columns)}"
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
    _real_folders: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise InputError(
                f"images folder not found: {self.images_dir}",
                "give a folder of photos named by product id (e.g. 1163.jpg), or leave out --images",
            )

    def records(self) -> Iterator[ProductRecord]:
        for row in self.rows():
            yield row.build()

    def rows(self) -> Iterator[SourceRow]:
        """Each row with an id, with its digest; the record is built only when ``build`` is called."""
        jsonl = self.path.suffix.lower() in (".jsonl", ".ndjson")
        rows = self._jsonl_rows() if jsonl else self._csv_rows()
        mappings: dict[tuple[str, ...], FeedMapping] = {}  # JSONL objects may differ in their keys
        found = no_id = 0
        salt = self._salt()
        self.state.complete = False  # until the last row is read: a feed that stops midway marks nothing gone
        for line, row, raw in rows:
            if (keys := tuple(row)) not in mappings:
                mappings[keys] = FeedMapping.detect(list(keys), self.overrides, strict=not jsonl)
            mapping = mappings[keys]
            external_id = clean_text(row.get(mapping.fields["id"])) if "id" in mapping.fields else None
            if not external_id:
                no_id += 1
                self.skipped.append(f"line {line}: no id")
                continue
            found += 1
            build = partial(self._record_of_line, raw) if jsonl else partial(self._record, row)
            yield SourceRow(
                external_id, self._digest(salt, raw, external_id, row, mapping), partial(build, mapping, external_id)
            )
        if no_id and not found:  # storing nothing would mark every product of the source gone
            raise InputError(f"no row of {self.path} has an id", "name the id column with --map id=COLUMN")
        # A skipped row may be a product we still sell: only a fully read feed may mark products gone.
        self.state.complete = not self.skipped
        self.state.pages = 1
        if self.skipped:
            self.state.notes.append(f"skipped {len(self.skipped)} rows: {'; '.join(self.skipped[:5])}")

    def _salt(self) -> bytes:
        """What besides the row shapes its record: the reader's version and settings, and where paths resolve."""
        parts = (READER_VERSION, self.images_dir, sorted(self.overrides.items()), os.path.realpath(self.path.parent))
        return repr(parts).encode()

    def _digest(self, salt: bytes, raw: str, external_id: str, row: Mapping[str, Any], mapping: FeedMapping) -> str:
        """A digest of the row as read (a photo found by id in the images folder too: adding one changes it)."""
        found = None
        if self.images_dir is not None and not image_refs(row.get(mapping.fields.get("image", ""))):
            found = self._image_for_id(external_id)
        blob = salt + raw.encode("utf-8", "surrogatepass") + str(found).encode()
        return "r:" + hashlib.blake2b(blob, digest_size=16).hexdigest()

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any], str]]:
        with _open_text(self.path) as handle:
            records = self._csv_records(handle)
            first = next(records, None)
            if first is None:
                raise InputError(f"{self.path} is empty or has no header row", "the first line must name the columns")
            header = first[1]
            for line, values in records:
                yield line, csv_row(header, values), "\x1f".join([*header, "\x1e", *values])

    def _csv_records(self, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
        """Each non-blank record with the line it starts on; csv's own errors become InputErrors."""
        lines = _Lines(handle)
        reader = csv.reader(lines)
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise csv_error(self.path, start, exc) from exc
            if values:  # [] is a blank line
                self._check_quotes(start, reader.line_num, values, lines.ended)
                yield start, values

    def _check_quotes(self, start: int, end: int, values: list[str], at_end: bool) -> None:
        """csv reads an unclosed quote as one field up to the next quote or the end of the file, silently."""
        if not at_end and end - start < MAX_RECORD_LINES:
            return
        line = quote_line(start, values)
        where = f"the end of the file (line {end})" if at_end else f"line {end}"
        raise InputError(
            f"{self.path}: line {line} opens a quote that runs on to {where}, swallowing the rows between",
            f"fix the quoting of line {line}; the rows before it are kept and no product is marked gone",
        )

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any], str]]:
        with _open_text(self.path) as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except (ValueError, RecursionError) as exc:  # bad JSON, a 4,300-digit number, deep nesting
                    problem = getattr(exc, "msg", None) or "nested too deeply, or a number too long to read"
                    if number == 1:
                        raise InputError(
                            f"{self.path} is not JSON Lines: line 1: {problem}",
                            "give one JSON object per line, or a .csv file",
                        ) from exc
                    self.skipped.append(f"line {number}: invalid JSON ({problem})")
                    continue
                if isinstance(row, dict):
                    yield number, row, text
                else:
                    self.skipped.append(f"line {number}: not a JSON object")

    def _record_of_line(self, line: str, mapping: FeedMapping, external_id: str) -> ProductRecord:
        """A JSONL row's record, its line parsed again: a batch that held its parsed rows until stored kept their
        objects past Python's young collections, and the full collections that followed took half of an unchanged
        re-sync of a million rows (60 of 116 s). Only a new or changed row is built, so parsed twice."""
        return self._record(json.loads(line), mapping, external_id)

    def _record(self, row: Mapping[str, Any], mapping: FeedMapping, external_id: str) -> ProductRecord:
        get = lambda name: clean_text(row.get(mapping.fields[name])) if name in mapping.fields else None  # noqa: E731
        title = get("title") or external_id
        attributes = [
            AttributeRecord(name=attr, value=value, origin="seller", evidence=column)
            for column, attr in mapping.attributes.items()
            if (value := clean_text(row.get(column)))
        ]
        return ProductRecord(
            external_id=external_id,
            title=title,
            description=get("description"),
            brand=get("brand") or (title.split()[0] if mapping.brand_from_title and title else None),
            product_type=get("product_type"),
            tags=tag_list(row.get(mapping.fields.get("tags", ""))),
            price=parse_price(get("price")),
            currency=get("currency"),
            url=get("url"),
            available=parse_available(row.get(mapping.fields.get("available", ""))),
            raw=dict(row),
            attributes=attributes,
            images=self._images(external_id, row.get(mapping.fields.get("image", ""))),
        )

    def _images(self, external_id: str, value: Any) -> list[ImageRecord]:
        refs = image_refs(value)
        if not refs:
            found = self._image_for_id(external_id)
            refs = [found.as_uri()] if found else []
        return [ImageRecord(url=self._resolve(ref), position=i) for i, ref in enumerate(refs)]

    def _resolve(self, ref: str) -> str:
        """A URL as given; a file as ``Path.resolve()`` would give it, its folder resolved once per folder (one
        lstat per image, not one per part of its path)."""
        if _URL.match(ref):
            return ref
        folder, name = os.path.split(os.path.join(self.images_dir or self.path.parent, ref))
        if folder not in self._real_folders:
            self._real_folders[folder] = os.path.realpath(folder)
        full = os.path.join(self._real_folders[folder], name)
        if name in ("", ".", "..") or os.path.islink(full):  # resolve() follows the file's own link too
            full = os.path.realpath(os.path.join(folder, name))
        return "file://" + quote_from_bytes(os.fsencode(full))  # Path(full).as_uri() without building a Path

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
        raise InputError(f"{root} is not a folder", "give a folder with one sub-folder of photos per category")
    photos = sorted(_photos(root))
    if not photos:
        raise InputError(f"no photos found under {root}", f"expected files ending in {', '.join(IMAGE_SUFFIXES)}")
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


def _photos(root: Path) -> Iterator[Path]:
    """Image files under root, leaving out hidden folders and files, macOS's __MACOSX and ._ copies."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not _hidden(d)]  # pruned in place, so os.walk never enters them
        for name in files:
            if not _hidden(name) and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(folder) / name


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"  # "._x.jpg" (AppleDouble) starts with "." too


def _open_text(path: Path) -> TextIO:
    if not path.is_file():
        raise InputError(f"feed file not found: {path}", "check the path")
    with path.open("rb") as raw:  # the head is enough, and a feed can be gigabytes
        head = raw.read(512)
    encoding = next((name for bom, name in _BOMS if head.startswith(bom)), "utf-8-sig")
    if head.decode(encoding, errors="replace").lstrip().lower().startswith(("<!doctype", "<html")):
        raise InputError(f"{path} is an HTML page, not a feed", "download the CSV/JSONL file itself")
    return path.open(newline="", encoding=encoding, errors="replace")


class _Lines:
    """A file's lines that note when the csv reader asks past the end: inside a record only an open quote does."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.ended = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.handle.readline()
        if not line:
            self.ended = True
            raise StopIteration
        return line
