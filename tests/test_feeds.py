"""CSV / JSONL feeds and folders of photos, on the real Myntra files."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sveta.catalog.records import ProductRecord, SourceRow
from sveta.catalog.store import CatalogStore
from sveta.errors import InputError
from sveta.ingest.feeds import FeedReader, read_folder
from sveta.ingest.pipeline import run_ingest
from sveta.vocab.reading import normalize_value


def _myntra_subset(myntra: Path, tmp_path: Path, n: int = 60) -> Path:
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[: n + 1]
    target = tmp_path / "styles.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_myntra_styles_need_no_mapping(myntra: Path, tmp_path: Path) -> None:
    feed = _myntra_subset(myntra, tmp_path)
    records = list(FeedReader(feed, images_dir=myntra / "images").records())
    assert len(records) == 60
    first = records[0]
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert first.external_id == row["id"] and first.title == row["productDisplayName"]
    assert first.brand == row["productDisplayName"].split()[0]
    seller = {a.name: (a.value, a.evidence) for a in first.attributes}
    assert seller["category"] == (row["articleType"], "articleType")
    assert seller["colour"] == (row["baseColour"], "baseColour")
    assert {"gender", "occasion", "season", "master_category", "sub_category"} <= set(seller)
    assert first.images[0].url == (myntra / "images" / f"{row['id']}.jpg").resolve().as_uri()


def test_unquoted_comma_in_title_is_kept(tmp_path: Path) -> None:
    feed = tmp_path / "styles.csv"
    feed.write_text(
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
        "1,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Brand Men Blue Shirt, Pack of 2\n",
        encoding="utf-8",
    )
    (record,) = FeedReader(feed).records()
    assert record.title == "Brand Men Blue Shirt, Pack of 2"


def test_generic_csv_with_mapping_and_bad_rows(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "sku,name,shade,cost,photo\n"
        'A1,Red floral dress,Red,"1,299.00",https://cdn.example/a1.jpg|https://cdn.example/a1b.jpg\n'
        ",no id here,Blue,10,\n",
        encoding="utf-8",
    )
    reader = FeedReader(feed, overrides={"id": "sku", "colour": "shade", "price": "cost", "image": "photo"})
    records = list(reader.records())
    assert [r.external_id for r in records] == ["A1"]
    assert records[0].title == "Red floral dress" and records[0].price == 1299.0
    assert [i.url for i in records[0].images] == ["https://cdn.example/a1.jpg", "https://cdn.example/a1b.jpg"]
    assert ("colour", "Red") in {(a.name, a.value) for a in records[0].attributes}
    assert reader.skipped and "no id" in reader.state.notes[0]


def test_mapping_to_a_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'nope'"):
        list(FeedReader(feed, overrides={"title": "nope"}).records())


def test_html_instead_of_a_feed_is_refused(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("<!DOCTYPE html><html><body>Sign in</body></html>", encoding="utf-8")
    with pytest.raises(InputError, match="HTML page"):
        list(FeedReader(feed).records())


def test_jsonl_feed_skips_bad_lines(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    lines = [
        json.dumps(
            {
                "id": 1,
                "title": "Black leather boots",
                "images": [{"src": "https://cdn.example/1.jpg"}],
                "tags": ["winter", "boots"],
                "available": False,
            }
        ),
        "{broken json",
        json.dumps([1, 2]),
        json.dumps({"id": "2", "title": "White sneakers", "image": "2.jpg"}),
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = FeedReader(feed)
    records = list(reader.records())
    assert [r.external_id for r in records] == ["1", "2"]
    assert records[0].tags == ["winter", "boots"] and records[0].available is False
    assert records[1].images[0].url == (tmp_path / "2.jpg").resolve().as_uri()
    assert len(reader.skipped) == 2


def test_jsonl_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="not JSON Lines"):
        list(FeedReader(feed).records())


def test_folder_per_category(myntra: Path, tmp_path: Path, catalog: CatalogStore) -> None:
    ids = {"skirts": ["10000", "10001"], "watches": ["10098"]}
    for category, names in ids.items():
        (tmp_path / "photos" / category).mkdir(parents=True)
        for name in names:
            shutil.copy(myntra / "images" / f"{name}.jpg", tmp_path / "photos" / category / f"{name}.jpg")
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    report = run_ingest(catalog, name="folder", kind="folder", location="x", records=read_folder(tmp_path / "photos"))
    assert report.new == 3
    product = catalog.find_product("watches/10098.jpg")
    assert product is not None and product.images[0].url.startswith("file://")
    assert product.category is not None and product.category == normalize_value("category", "watches")


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no photos"):
        list(read_folder(tmp_path))


# -- defects from review: a stray quote, JSONL rows that omit keys, encodings, hidden files, --images --------------


def _rows_csv(tmp_path: Path, n: int, changes: dict[int, str] | None = None) -> Path:
    """``id,title,description`` with n rows; row i is on line i + 1, and ``changes`` replaces whole rows."""
    rows = [f"{i},Item {i},desc {i}" for i in range(1, n + 1)]
    for i, text in (changes or {}).items():
        rows[i - 1] = text
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title,description\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return feed


@pytest.mark.parametrize(
    "closed_by",
    [None, '301,Item 301,"desc, 301"'],  # never closed / closed by the next quote, 297 lines on
    ids=["to-the-end", "by-a-later-quote"],
)
def test_a_stray_quote_is_an_error_naming_its_line(tmp_path: Path, closed_by: str | None) -> None:
    changes = {3: '3,Item 3,"desc 3'} | ({301: closed_by} if closed_by else {})
    reader = FeedReader(_rows_csv(tmp_path, 4999, changes))
    read: list[str] = []
    with pytest.raises(InputError, match="line 4 opens a quote") as info:
        read.extend(r.external_id for r in reader.records())
    assert info.value.hint is not None and "fix the quoting of line 4" in info.value.hint
    assert read == ["1", "2"] and reader.state.complete is False


def test_an_unclosed_quote_on_the_last_row_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 4 opens a quote that runs on to the end of the file"):
        list(FeedReader(_rows_csv(tmp_path, 3, {3: '3,Item 3,"desc 3'})).records())


def test_long_quoted_fields_are_still_read(tmp_path: Path) -> None:
    description = '"' + "\r\n".join(f"line {i}" for i in range(50)) + '"'
    feed = _rows_csv(tmp_path, 3, {2: f"2,Item 2,{description}"})
    records = list(FeedReader(feed).records())
    assert [r.external_id for r in records] == ["1", "2", "3"] and records[1].description is not None
    assert records[1].description.count("\n") == 49


def test_a_stray_quote_keeps_what_was_read_and_marks_nothing_gone(tmp_path: Path, catalog: CatalogStore) -> None:
    good = _rows_csv(tmp_path, 300)
    first = run_ingest(catalog, name="feed", kind="csv", location="x", records=FeedReader(good).records())
    assert first.new == 300
    reader = FeedReader(_rows_csv(tmp_path, 300, {150: '150,Item 150,"desc 150'}))
    with pytest.raises(InputError, match="line 151"):
        run_ingest(catalog, name="feed", kind="csv", location="x", records=reader.records(), state=reader.state)
    run = catalog.runs(limit=1)[0]
    assert (run.status, run.unchanged, run.gone) == ("failed", 149, 0)  # rows 1-149 were stored
    last = catalog.find_product("300")
    assert last is not None and last.gone_at is None


def test_a_field_over_the_csv_limit_is_an_input_error(tmp_path: Path) -> None:
    feed = _rows_csv(tmp_path, 3, {2: "2,Item 2," + "x" * 200_000})
    with pytest.raises(InputError, match="row at line 3 has a field over 128 KB"):
        list(FeedReader(feed).records())


def test_jsonl_rows_may_omit_the_id_or_a_mapped_key(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    rows = [{"id": "1", "title": "Red dress", "shade": "Red"}, {"title": "no id"}, {"id": "2", "title": "Plain tee"}]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    reader = FeedReader(feed, overrides={"colour": "shade"})
    records = list(reader.records())
    assert [r.external_id for r in records] == ["1", "2"] and reader.skipped == ["line 2: no id"]
    assert [(a.name, a.value) for a in records[0].attributes] == [("colour", "Red")]
    assert records[1].attributes == [] and reader.state.complete is False  # a skipped row marks nothing gone


def test_jsonl_where_no_row_has_an_id_is_an_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"sku": "A1", "title": "x"}\n{"sku": "A2"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"no row .* has an id"):  # storing nothing would mark everything gone
        list(FeedReader(feed, overrides={"id": "code"}).records())


def test_csv_without_an_id_column_is_still_an_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("code,title\nA1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="no id column"):
        list(FeedReader(feed).records())


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_feeds_with_a_byte_order_mark_are_decoded(tmp_path: Path, encoding: str) -> None:
    feed = tmp_path / "feed.csv"
    bom = "" if encoding in ("utf-16", "utf-32", "utf-8-sig") else "\ufeff"  # these codecs write their own
    feed.write_text(f"{bom}id,title\n1,Röd klänning\n", encoding=encoding)
    (record,) = FeedReader(feed).records()
    assert (record.external_id, record.title) == ("1", "Röd klänning")


def test_only_the_head_of_a_feed_is_read_to_sniff_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    feed = _rows_csv(tmp_path, 2)

    def whole_file(self: Path) -> bytes:
        raise AssertionError("the whole feed was read into memory")

    monkeypatch.setattr(Path, "read_bytes", whole_file)
    assert len(list(FeedReader(feed).records())) == 2


def test_folder_skips_hidden_files_and_macos_copies(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for name in ["skirts/a.jpg", "skirts/._a.jpg", "skirts/.b.jpg", ".thumbs/c.jpg", "__MACOSX/skirts/._a.jpg"]:
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes(b"\xff\xd8\xff")
    assert [r.external_id for r in read_folder(photos)] == ["skirts/a.jpg"]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_an_images_folder_that_is_not_a_folder_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    images = tmp_path / "images"
    if kind == "file":
        images.write_text("not a folder")
    with pytest.raises(InputError, match="images folder not found"):
        list(FeedReader(_rows_csv(tmp_path, 2), images_dir=images).records())


def test_image_paths_resolve_as_path_resolve_does(tmp_path: Path) -> None:
    """Each folder is resolved once per reader; a linked file or folder must still give what resolve() gives, or
    every product of an existing catalog would look changed."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    (tmp_path / "img" / "link.jpg").symlink_to(tmp_path / "img" / "a.jpg")
    (tmp_path / "linked").symlink_to(tmp_path / "img")
    feed = tmp_path / "feed.jsonl"
    refs = ["img/a.jpg", "img/link.jpg", "linked/link.jpg", "./img/../linked/a.jpg", "gone/x.jpg", "img/", "a b.jpg"]
    feed.write_text("".join(json.dumps({"id": str(i), "title": "T", "image": r}) + "\n" for i, r in enumerate(refs)))
    urls = [record.images[0].url for record in FeedReader(feed).records()]
    assert urls == [(tmp_path / ref).resolve().as_uri() for ref in refs]
    assert urls[1] == urls[2] == urls[0]  # both links lead to img/a.jpg


def _counted(reader: FeedReader, built: list[str]) -> Iterator[SourceRow]:
    """The reader's rows, noting each one built into a record."""
    for row in reader.rows():
        yield SourceRow(row.external_id, row.digest, partial(_build_noted, row, built))


def _build_noted(row: SourceRow, built: list[str]) -> ProductRecord:
    built.append(row.external_id)
    return row.build()


def _sync(catalog: CatalogStore, feed: Path, built: list[str], **options: Any) -> Any:
    reader = FeedReader(feed, **options)
    rows = _counted(reader, built)
    return run_ingest(catalog, name="feed", kind="jsonl", location=str(feed), records=rows, state=reader.state)


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_unchanged_resync_builds_no_record_and_a_changed_row_only_its_own(
    catalog: CatalogStore, tmp_path: Path
) -> None:
    rows = [{"id": f"p{i}", "title": f"Blue cotton shirt {i}", "price": 10 + i} for i in range(5)]
    feed = _jsonl(tmp_path / "feed.jsonl", rows)
    built: list[str] = []
    assert _sync(catalog, feed, built).new == 5 and len(built) == 5
    built.clear()
    report = _sync(catalog, feed, built)
    assert (report.unchanged, report.changed, built) == (5, 0, [])
    rows[3]["price"] = 99
    report = _sync(catalog, _jsonl(feed, rows), built)
    assert (report.unchanged, report.changed, built) == (4, 1, ["p3"])
    product = catalog.find_product("p3")
    assert product is not None and product.price_min == 99


def test_a_catalog_stored_from_records_adopts_row_digests_without_a_change(
    catalog: CatalogStore, tmp_path: Path
) -> None:
    feed = _jsonl(tmp_path / "feed.jsonl", [{"id": f"p{i}", "title": f"Red dress {i}"} for i in range(3)])
    reader = FeedReader(feed)  # records, as a caller of the library may give: fingerprints of whole records
    run_ingest(catalog, name="feed", kind="jsonl", location=str(feed), records=reader.records(), state=reader.state)
    built: list[str] = []
    report = _sync(catalog, feed, built)
    assert (report.unchanged, report.changed, len(built)) == (3, 0, 3)  # built once, to compare
    built.clear()
    assert (_sync(catalog, feed, built).unchanged, built) == (3, [])


def test_a_row_digest_changes_with_the_readers_settings_and_a_photo_found_by_id(myntra: Path, tmp_path: Path) -> None:
    feed = _jsonl(tmp_path / "feed.jsonl", [{"id": "p1", "name": "Shirt", "hue": "Red"}])
    images = tmp_path / "images"
    images.mkdir()

    def digest(**options: Any) -> str:
        (row,) = FeedReader(feed, **options).rows()
        return row.digest

    plain, with_folder = digest(), digest(images_dir=images)
    assert plain == digest() and plain != with_folder != digest(overrides={"colour": "hue"})
    shutil.copy(next((myntra / "images").glob("*.jpg")), images / "p1.jpg")
    assert digest(images_dir=images) != with_folder  # a photo for p1 appeared in the folder


def test_a_row_taken_as_unchanged_is_built_before_it_is_written_if_it_changed_meanwhile(tmp_path: Path) -> None:
    """``upsert_batch`` re-checks inside its transaction; a row it finds changed there is built, not its stand-in."""
    from sveta.ingest.pipeline import _deriver, _unbuilt

    feed = _jsonl(tmp_path / "feed.jsonl", [{"id": "p1", "title": "Blue cotton shirt"}])
    (row,) = FeedReader(feed).rows()
    stand_in = _unbuilt(row)
    assert stand_in.title == "" and stand_in.external_id == "p1"
    prepared = _deriver([row])(stand_in, row.digest)
    assert prepared.record.title == "Blue cotton shirt" and prepared.fingerprint == row.digest


def test_a_jsonl_row_holds_its_line_not_its_parsed_objects_until_built(tmp_path: Path) -> None:
    """A batch's rows outlive Python's young collections: rows holding their parsed dicts and lists made the full
    collections of an unchanged re-sync of a million products 60 of its 116 s."""
    import gc

    row_data = {"id": "p1", "title": "Blue cotton shirt", "tags": ["men", "summer"], "image": ["a.jpg", "b.jpg"]}
    (row,) = FeedReader(_jsonl(tmp_path / "feed.jsonl", [row_data])).rows()
    held = gc.get_referents(row.build)  # a partial: its function, its arguments' tuple, its keywords
    held += [x for tup in held if isinstance(tup, tuple) for x in tup]
    assert not any(isinstance(x, dict | list) and x for x in held), held
    record = row.build()
    assert (record.title, record.tags, len(record.images)) == ("Blue cotton shirt", ["men", "summer"], 2)


def test_a_batch_found_all_unchanged_makes_no_stand_ins(
    catalog: CatalogStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-ins a batch holds outlive Python's young collections too: an all-unchanged batch makes none."""
    from sveta.ingest import pipeline

    made: list[str] = []
    unbuilt = pipeline._unbuilt
    monkeypatch.setattr(pipeline, "_unbuilt", lambda item: made.append(item.external_id) or unbuilt(item))
    rows = [{"id": f"p{i}", "title": f"Green linen dress {i}"} for i in range(4)]
    feed = _jsonl(tmp_path / "feed.jsonl", rows)
    _sync(catalog, feed, [])
    made.clear()
    assert (_sync(catalog, feed, []).unchanged, made) == (4, [])
    rows[0]["title"] = "Green linen maxi dress 0"
    assert _sync(catalog, _jsonl(feed, rows), []).changed == 1 and sorted(made) == ["p1", "p2", "p3"]
