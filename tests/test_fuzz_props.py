"""Property tests: feed rows, products.json records, robots.txt, the query parser and the settings never crash on
arbitrary input with anything but sveta's own errors, and what they read back is what was written."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy import select
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.catalog.models import Product
from sveta.catalog.store import CatalogStore
from sveta.cli import _common, app
from sveta.errors import ConfigError, InputError
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ingest.robots import RobotsRules
from sveta.ingest.shopify_records import product_record
from sveta.net import retry_after_s
from sveta.settings import Settings
from sveta.vocab.attributes import vocabulary
from sveta.vocab.html_text import storable
from sveta.vocab.query import ATTRIBUTES, parse_query
from sveta.vocab.query_price import MAX_PRICE

EXAMPLES = 60  # per property: the module runs in a few seconds
QUICK = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BRANDS = ["Nike", "Levi's", "Red Tape", "H&M", "Tommy Hilfiger", "Lee"]
# Text a store or a feed may send: any unicode, NUL, controls and lone surrogates included.
ANY_TEXT = st.text(st.characters(codec=None), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=12,
)


def _clean(text: str | None) -> bool:
    """What the catalog can store on SQLite and PostgreSQL alike: no NUL, no lone surrogate."""
    return text is None or ("\x00" not in text and not re.search(r"[\ud800-\udfff]", text))


# -- CSV and JSONL feeds ----------------------------------------------------------------------------

FEED_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)  # what a UTF-8 file can hold


@QUICK
@given(header=st.lists(FEED_TEXT, min_size=1, max_size=5), rows=st.lists(st.lists(FEED_TEXT, max_size=6), max_size=6))
def test_any_csv_is_read_or_refused_with_an_input_error(
    tmp_path: Path, header: list[str], rows: list[list[str]]
) -> None:
    feed = tmp_path / "feed.csv"
    with feed.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    _read_all(feed)


@QUICK
@given(lines=st.lists(JSON.map(json.dumps) | FEED_TEXT, max_size=6))
@example(lines=["[" * 100_000])  # deeper than the JSON parser's recursion
@example(lines=['{"id": 1}', "1" * 5_000])  # an integer past Python's 4,300 digits
def test_any_jsonl_is_read_or_refused_with_an_input_error(tmp_path: Path, lines: list[str]) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    _read_all(feed)


def _read_all(feed: Path) -> None:
    reader = FeedReader(feed)
    try:
        records = list(reader.records())
    except InputError:
        return
    for record in records:
        assert record.external_id and record.title
        assert record.price is None or (math.isfinite(record.price) and record.price >= 0)
        assert all(_clean(text) for text in (record.external_id, record.title, record.brand, record.description))
        assert all(image.url != "None" and not image.url.endswith("/None") for image in record.images)


ROW_TEXT = st.text(st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"], exclude_characters=","), min_size=1)


@QUICK
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"id": ROW_TEXT, "title": ROW_TEXT, "brand": ROW_TEXT, "colour": ROW_TEXT},
            optional={"price": st.decimals(0, 10**6, places=2, allow_nan=False)},
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda row: row["id"],
    ),
    jsonl=st.booleans(),
)
def test_valid_rows_round_trip_their_fields(tmp_path: Path, rows: list[dict[str, Any]], jsonl: bool) -> None:
    feed = tmp_path / ("feed.jsonl" if jsonl else "feed.csv")
    if jsonl:
        feed.write_text("\n".join(json.dumps({k: str(v) for k, v in row.items()}) for row in rows), encoding="utf-8")
    else:
        with feed.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ["id", "title", "brand", "colour", "price"])
            writer.writeheader()
            writer.writerows(rows)
    records = list(FeedReader(feed).records())
    assert len(records) == len(rows)
    for row, record in zip(rows, records, strict=True):
        assert (record.external_id, record.title, record.brand) == (row["id"], row["title"], row["brand"])
        assert [(a.name, a.value) for a in record.attributes] == [("colour", row["colour"])]
        assert record.price == (float(row["price"]) if "price" in row else None)


def test_a_feed_with_nul_and_lone_surrogates_is_ingested(catalog: CatalogStore, tmp_path: Path) -> None:
    """PostgreSQL refuses a NUL in text: the readers drop it (and replace lone surrogates) before the catalog."""
    feed = tmp_path / "feed.jsonl"
    row = {"id": "a\x00b", "title": "Red\x00 shirt \ud800", "brand": "Ac\x00me", "tags": ["t\x00"], "colour": "Red\x00"}
    feed.write_text(json.dumps(row) + "\n" + json.dumps({"id": "2", "images": [{"alt": "no src"}]}), encoding="utf-8")
    reader = FeedReader(feed)
    report = run_ingest(
        catalog, name="feed", kind="jsonl", location=str(feed), records=reader.records(), state=reader.state
    )
    assert (report.new, report.errors) == (2, [])
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(Product.external_id, Product.title, Product.brand).order_by(Product.id)).all()
    assert [tuple(r) for r in rows] == [("ab", "Red shirt \ufffd", "Acme"), ("2", "2", None)]


# -- Shopify products.json records ------------------------------------------------------------------

RECORD_KEYS = ["title", "handle", "body_html", "vendor", "product_type", "tags", "options", "variants", "images"]
RECORD = st.fixed_dictionaries(
    {"id": st.integers(1, 2**53) | ANY_TEXT.filter(bool)},
    optional={key: JSON for key in [*RECORD_KEYS, "created_at", "updated_at"]},
)
VARIANT = st.fixed_dictionaries(
    {"id": st.integers(1, 2**53)},
    optional={k: JSON for k in ("title", "option1", "price", "compare_at_price", "sku", "position", "available")},
)
IMAGE = st.fixed_dictionaries(
    {"src": st.just("https://cdn.shop.example/a.jpg")},
    optional={k: JSON for k in ("position", "width", "height", "alt", "variant_ids")},
)


@QUICK
@given(raw=RECORD, variants=st.lists(VARIANT, max_size=3), images=st.lists(IMAGE, max_size=3), nest=st.booleans())
def test_any_products_json_record_becomes_a_typed_record(
    raw: dict[str, Any], variants: list[dict[str, Any]], images: list[dict[str, Any]], nest: bool
) -> None:
    if nest:  # well-formed lists of odd members, beside the arbitrary values above
        raw = raw | {"variants": variants, "images": images}
    record = product_record(raw, "https://shop.example")
    assert record.external_id == storable(str(raw["id"])) and isinstance(record.title, str)
    for text in (record.title, record.handle, record.brand, record.product_type, record.description):
        assert text is None or isinstance(text, str)
        assert _clean(text)
    for variant in record.variants:
        assert isinstance(variant.position, int) and isinstance(variant.external_id, str)
        assert all(p is None or math.isfinite(p) for p in (variant.price, variant.compare_at_price))
    for image in record.images:
        assert isinstance(image.position, int) and image.url.startswith("https://")
        assert all(v is None or isinstance(v, int) for v in (image.width, image.height))


def test_a_real_products_json_record_round_trips_its_fields() -> None:
    raw = {
        "id": 7,
        "title": "Linen Shirt",
        "handle": "linen-shirt",
        "vendor": "Acme",
        "tags": ["summer", " linen "],
        "options": [{"name": "Size"}, {"name": "Color"}],
        "variants": [{"id": 70, "option1": "M", "option2": "Navy", "price": "1,299.50", "position": 1}],
        "images": [{"src": "//cdn.shop.example/s.jpg", "position": 1, "width": 800, "height": 1000}],
    }
    record = product_record(raw, "https://shop.example")
    assert (record.external_id, record.title, record.brand, record.tags) == (
        "7",
        "Linen Shirt",
        "Acme",
        ["summer", "linen"],
    )
    (variant,) = record.variants
    assert (variant.size, variant.colour, variant.price) == ("M", "Navy", 1299.5)
    assert (
        record.images[0].url == "https://cdn.shop.example/s.jpg"
        and record.url == "https://shop.example/products/linen-shirt"
    )


@QUICK
@given(value=st.none() | ANY_TEXT | st.floats().map(str) | st.integers().map(str))
@example(value="²")
@example(value="Wed, 21 Oct 2015 07:28:00 GMT")
def test_any_retry_after_header_is_seconds_or_none(value: str | None) -> None:
    seconds = retry_after_s(value)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


# -- robots.txt -------------------------------------------------------------------------------------

ROBOTS_LINE = st.one_of(
    st.builds(
        "{}: {}".format, st.sampled_from(["User-agent", "Disallow", "Allow", "Crawl-delay", "Sitemap"]), ANY_TEXT
    ),
    ANY_TEXT,
)


@QUICK
@given(lines=st.lists(ROBOTS_LINE, max_size=8), urls=st.lists(ANY_TEXT, max_size=4))
@example(lines=["User-agent: *", "Disallow: /"], urls=["http://[::1", "/%zz", "//x"])
def test_any_robots_txt_parses_and_answers_every_url(lines: list[str], urls: list[str]) -> None:
    rules = RobotsRules("\n".join(lines), "sveta")
    assert rules.crawl_delay is None or rules.crawl_delay == rules.crawl_delay  # a number, not NaN
    for url in urls:
        assert rules.allows(url) in (True, False)


@QUICK
@given(prefix=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8))
def test_robots_longest_rule_wins(prefix: str) -> None:
    rules = RobotsRules(f"User-agent: *\nDisallow: /{prefix}\nAllow: /{prefix}/open\n", "sveta")
    assert not rules.allows(f"/{prefix}/closed") and rules.allows(f"/{prefix}/open/x") and rules.allows("/")


# -- the query parser -------------------------------------------------------------------------------

QUERY = st.text(st.characters(codec=None), max_size=300) | st.lists(
    st.sampled_from(["not", "red", "navy", "shirt", "under", "$40", "20-40", "3k", "men", "Nike", "-black", "or"]),
    max_size=8,
).map(" ".join)


@QUICK
@given(text=QUERY, brands=st.sampled_from([[], BRANDS]))
def test_any_query_parses_deterministically_into_the_vocabulary(text: str, brands: list[str]) -> None:
    intent = parse_query(text, brands)
    assert intent == parse_query(text, brands)
    attributes = vocabulary().attributes
    for name in ATTRIBUTES:
        value = getattr(intent, name)
        assert value is None or value in attributes[name].values, (name, value)
    assert intent.brand is None or intent.brand in brands
    for bound in (intent.price_min, intent.price_max):
        assert bound is None or 0 <= bound <= MAX_PRICE
    assert set(intent.excluded) <= {*ATTRIBUTES, "brand", "price_band", "words"}
    for span in intent.spans:
        assert 0 <= span.start <= span.end <= len(intent.text) and intent.text[span.start : span.end] == span.words
    assert json.loads(json.dumps(intent.as_dict())) == intent.as_dict()


# -- the settings -----------------------------------------------------------------------------------

FIELDS = sorted(Settings.model_fields)


@QUICK
@given(
    name=st.sampled_from(FIELDS), value=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
)
def test_any_environment_value_validates_or_is_a_pydantic_error(name: str, value: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"SVETA_{name.upper()}", value)
        with contextlib.suppress(ValidationError, SettingsError):  # anything else fails the test
            Settings(_env_file=None)  # type: ignore[call-arg]


BAD_VALUES = {
    "SVETA_ONNX_THREADS": ("many", "SVETA_ONNX_THREADS"),
    "SVETA_EMBED_WEIGHTS": ("{not json", "SVETA_EMBED_WEIGHTS"),
    "SVETA_IMAGE_MAX_PIXELS": ("-1", "SVETA_IMAGE_MAX_PIXELS"),
    "SVETA_API_RATE_LIMIT": ("²", "SVETA_API_RATE_LIMIT"),
}


@pytest.mark.parametrize("variable", list(BAD_VALUES))
def test_a_bad_setting_is_one_clear_error_line_in_the_cli(variable: str, tmp_path: Path) -> None:
    value, named = BAD_VALUES[variable]
    result = _cli({"SVETA_DATA_DIR": str(tmp_path), variable: value}, ["catalog", "stats"])
    _one_error(result, named)


@pytest.mark.parametrize("variable", list(BAD_VALUES))
def test_a_bad_setting_is_one_clear_config_error_from_the_api(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    value, named = BAD_VALUES[variable]
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        create_app()
    assert raised.value.message.startswith(f"bad setting: {named}"), raised.value.message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__, "a chained pydantic traceback"


def test_a_bad_setting_beside_data_dir_is_one_clear_error_line(tmp_path: Path) -> None:
    result = _cli({"SVETA_ONNX_THREADS": "many"}, ["--data-dir", str(tmp_path), "catalog", "stats"])
    _one_error(result, "SVETA_ONNX_THREADS")


def test_an_odd_omp_num_threads_is_no_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "²")
    Settings(_env_file=None)  # type: ignore[call-arg]


def _cli(env: dict[str, str], args: list[str]) -> Any:
    _common._state.clear()
    try:
        return CliRunner().invoke(app, args, env=env)
    finally:
        _common._state.clear()


def _one_error(result: Any, named: str) -> None:
    output = result.output
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit | None), output  # ConfigError's code
    assert "Traceback" not in output and "╭" not in output, output
    assert output.count("error:") == 1 and named in " ".join(output.split()), output
