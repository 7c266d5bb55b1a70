"""Query understanding: synonyms, shades, people, brands with typos, prices, negations, and bad input."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest

from sveta.vocab.attributes import phrase_key
from sveta.vocab.query import MAX_QUERY_CHARS, Intent, parse_query
from sveta.vocab.query_brands import brand_index, fuzzy_brands
from sveta.vocab.query_words import fold_accents, query_words
from sveta.vocab.shades import MAX_SHADES, shades

STYLES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "myntra-small" / "styles.csv"
# What a keyword index could choke on: FTS5 / tsquery operators and SQL punctuation.
SYNTAX = re.compile(r"[\"'*:;()\-^+{}\[\]]")
SMALL_BRANDS = ["Nike", "Adidas", "Puma", "Levi's", "Red Tape", "Under Armour", "H&M", "Tommy Hilfiger", "Lee"]


@pytest.fixture(scope="module")
def brands() -> list[str]:
    """The Myntra catalog's brands: the first word of each title, as the demo catalog's brand column holds."""
    if not STYLES.is_file():
        pytest.skip(f"the shared Myntra styles.csv is not at {STYLES}: put shared/ beside the checkout")
    with STYLES.open(newline="", encoding="utf-8", errors="replace") as f:
        firsts = [(row.get("productDisplayName") or "").split()[:1] for row in csv.DictReader(f)]
    return list(dict.fromkeys(words[0] for words in firsts if words))


def parse(text: str, brands: list[str] | None = None) -> Intent:
    return parse_query(text, SMALL_BRANDS if brands is None else brands)


# categories: synonyms and plurals


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("tees", "T-Shirt"),
        ("t shirts", "T-Shirt"),
        ("T-Shirts", "T-Shirt"),
        ("tshirt", "T-Shirt"),
        ("sneakers", "Casual Shoes"),
        ("running shoes", "Sports Shoes"),
        ("dresses", "Dress"),
        ("hoodies", "Sweatshirt"),
        ("kurtis", "Kurti"),
        ("joggers", "Track Pants"),
        ("flip flops", "Flip Flops"),
        ("shoe bag", "Bag"),  # the head noun, as the title reader has it
        ("dress with belt", "Dress"),
        ("sunglasses", "Sunglasses"),
    ],
)
def test_categories_with_synonyms_and_plurals(query: str, category: str) -> None:
    assert parse(query).category == category


# colours and their close shades


@pytest.mark.parametrize(
    ("query", "colour", "near"),
    [
        ("navy", "Navy Blue", "Blue"),
        ("navy blue shirt", "Navy Blue", "Blue"),
        ("maroon", "Maroon", "Red"),
        ("red", "Red", "Maroon"),
        ("blue", "Blue", "Navy Blue"),
        ("wine kurta", "Maroon", "Burgundy"),
        ("charcoal grey", "Charcoal", "Black"),
        ("off white", "Off White", "White"),
        ("coral red top", "Red", "Rust"),  # side-by-side colour words name one colour, the last one the head
        ("olive", "Olive", "Green"),
    ],
)
def test_colours_and_their_shades(query: str, colour: str, near: str) -> None:
    intent = parse(query)
    assert intent.colour == colour
    assert near in intent.colour_near
    assert colour not in intent.colour_near


def test_shades_come_from_names_and_lab_and_are_few() -> None:
    assert shades("Navy Blue") == ("Blue",)  # named a blue in the vocabulary, and one hue in Lab
    assert "Orange" not in shades("Red")  # near in Lab (36) but another hue
    assert shades("Multi") == () and shades("Plaid") == ()
    assert shades("Rose") == ("Pink",)  # not in the palette: its name ("rose pink") says what it is
    assert all(len(shades(c)) <= MAX_SHADES for c in ("Grey", "White", "Brown", "Green"))


def test_a_negated_shade_is_not_near() -> None:
    intent = parse("navy not blue")
    assert intent.colour == "Navy Blue" and intent.colour_near == ()
    assert intent.excluded == {"colour": ["Blue"]}


# people: gender and age group


@pytest.mark.parametrize(
    ("query", "gender", "age_group"),
    [
        ("men's shirts", "Men", None),
        ("mens shirts", "Men", None),
        ("shirts for men", "Men", None),
        ("gift for him", "Men", None),
        ("watch for her", "Women", None),
        ("women jeans", "Women", None),
        ("ladies watches", "Women", None),
        ("kids shoes", None, "Kids"),
        ("boys t shirts", "Boys", "Kids"),
        ("girls dresses", "Girls", "Kids"),
        ("unisex hoodie", "Unisex", None),
        ("men and women sneakers", "Unisex", None),
        ("dress for my wife", "Women", None),
        ("shorts for my son", "Boys", "Kids"),
        ("boyfriend jeans", None, None),  # a fit, not a person
        ("baby pink top", None, None),  # a colour, not a baby
    ],
)
def test_gender_and_age_group(query: str, gender: str | None, age_group: str | None) -> None:
    intent = parse(query)
    assert (intent.gender, intent.age_group) == (gender, age_group)


# brands: the catalog's own list, case- and accent-insensitive, one typo for long names


@pytest.mark.parametrize(
    ("query", "brand"),
    [
        ("puma", "Puma"),
        ("PUMA track pants", "Puma"),
        ("nike running shoes", "Nike"),
        ("addidas sneakers", "ADIDAS"),  # an extra letter in a 6-letter name
        ("adidsa", "ADIDAS"),  # two letters swapped
        ("adidas", "ADIDAS"),
        ("nkie shoes", None),  # Nike has 4 letters: no typo allowed
        ("nik", None),
        ("wrangler jeans", "Wrangler"),
        ("wranglr jeans", "Wrangler"),  # a missing letter
        ("timberland boots", "Timberland"),
        ("tinberland boots", "Timberland"),  # a wrong letter
        ("fastrack watch", "Fastrack"),
        ("red shirt", None),  # "Red" opens Red Tape titles; the colour wins
        ("black watch", None),
        ("indigo jeans", None),
        ("under 500", None),  # "Under" opens Under Armour titles; a price here
        ("new arrivals", None),
        ("and", None),
    ],
)
def test_brands_from_the_catalog_list(brands: list[str], query: str, brand: str | None) -> None:
    assert parse(query, brands).brand == brand


@pytest.mark.parametrize("query", ["LEVI'S jeans", "levis jeans", "Levi's", "Lévis", "LÉVI’S denim", "levi jeans"])
def test_brands_ignore_case_accents_and_apostrophes(brands: list[str], query: str) -> None:
    brand = parse(query, brands).brand
    assert brand is not None and phrase_key(brand) == "levis"


@pytest.mark.parametrize(
    ("query", "brand", "rest"),
    [
        ("red tape shoes", "Red Tape", ""),  # a longer brand beats the colour
        ("under armour shorts", "Under Armour", ""),
        ("h&m dress", "H&M", ""),
        ("tommy hilfigr polo", "Tommy Hilfiger", ""),
        ("lee jeans", "Lee", ""),
        ("leo jeans", None, "leo"),  # 3 letters: exact only
        ("zara dress", None, "zara"),  # not in this catalog: left for keyword search
    ],
)
def test_brands_of_several_words_and_typos(query: str, brand: str | None, rest: str) -> None:
    intent = parse(query)
    assert (intent.brand, intent.rest) == (brand, rest)


def test_without_a_brand_list_no_brand_is_read() -> None:
    intent = parse_query("nike shoes")
    assert intent.brand is None and intent.rest == "nike"


def test_a_typo_keeps_the_first_letter() -> None:
    index = brand_index(["Urban", "Basics"])
    assert fuzzy_brands(["turban"], index, {0}) == []
    assert [h.brand for h in fuzzy_brands(["basic"], index, {0})] == ["Basics"]


# prices


@pytest.mark.parametrize(
    ("query", "low", "high"),
    [
        ("under 50", None, 50),
        ("below $40", None, 40),
        ("less than 99.5", None, 99.5),
        ("up to 3k", None, 3000),
        ("under 1,299", None, 1299),
        ("within ₹2000", None, 2000),
        ("500 or less", None, 500),
        ("<50", None, 50),
        ("over 100", 100, None),
        ("above rs. 500", 500, None),
        ("50+", 50, None),
        ("40 and up", 40, None),
        ("between 20 and 40", 20, 40),
        ("from $20 to $40", 20, 40),
        ("20-40", 20, 40),
        ("40 - 20", 20, 40),
        ("1000 to 2000 rupees", 1000, 2000),
        ("dress under 50 over 20", 20, 50),
    ],
)
def test_price_words(query: str, low: float | None, high: float | None) -> None:
    intent = parse(query)
    assert (intent.price_min, intent.price_max) == (low, high)


@pytest.mark.parametrize(
    "query", ["3-4 years", "size 32-34", "under 5 kg", "3/4 sleeve top", "pack of 3", "shoes 3000", "under armour"]
)
def test_numbers_that_are_no_price(query: str) -> None:
    intent = parse(query)
    assert intent.price_min is None and intent.price_max is None


@pytest.mark.parametrize(
    ("query", "band"),
    [("cheap dresses", "low"), ("budget friendly shoes", "low"), ("luxury watch", "high"), ("high end bag", "high")],
)
def test_price_bands_are_soft_hints(query: str, band: str) -> None:
    intent = parse(query)
    assert intent.price_band == band
    assert intent.price_min is None and intent.price_max is None  # no made-up number


def test_high_neck_is_no_price_band() -> None:
    intent = parse("high neck top")
    assert intent.price_band is None and intent.neckline == "High Neck"


# negations


@pytest.mark.parametrize(
    ("query", "excluded", "kept"),
    [
        ("not black", {"colour": ["Black"]}, {}),
        ("dress not black", {"colour": ["Black"]}, {"category": "Dress"}),
        ("no print kurta", {"pattern": ["Printed"]}, {"category": "Kurta"}),
        ("shirt without print", {"pattern": ["Printed"]}, {"category": "Shirt"}),
        ("without any print", {"pattern": ["Printed"]}, {}),
        ("non-leather jacket", {"material": ["Leather"]}, {"category": "Jacket"}),
        ("non leather bags", {"material": ["Leather"]}, {"category": "Bag"}),
        ("tops except red", {"colour": ["Red"]}, {"category": "Top"}),
        ("not black or navy", {"colour": ["Black", "Navy Blue"]}, {}),
        ("except red, blue and green", {"colour": ["Red", "Blue", "Green"]}, {}),
        ("dress -black", {"colour": ["Black"]}, {"category": "Dress"}),
        ("shoes not nike", {"brand": ["Nike"]}, {"category": "Casual Shoes"}),
        ("shirt without pockets", {"words": ["pockets"]}, {"category": "Shirt"}),
        ("not for men", {"gender": ["Men"]}, {}),
        ("red dress not maxi", {"category": ["Dress"]}, {"colour": "Red", "category": "Dress"}),
        ("black not red", {"colour": ["Red"]}, {"colour": "Black"}),
        ("watch not expensive", {"price_band": ["high"]}, {"category": "Watch"}),
    ],
)
def test_negations(query: str, excluded: dict[str, list[str]], kept: dict[str, str]) -> None:
    intent = parse(query)
    assert intent.excluded == excluded
    assert {key: getattr(intent, key) for key in kept} == kept
    for key, values in excluded.items():
        if key not in kept and key not in ("words",):
            assert getattr(intent, key) not in values


@pytest.mark.parametrize(("query", "sleeve"), [("no sleeve top", "Sleeveless"), ("top without sleeves", "Sleeveless")])
def test_a_negation_inside_a_vocabulary_phrase_is_that_phrase(query: str, sleeve: str) -> None:
    intent = parse(query)
    assert intent.sleeve_length == sleeve and intent.excluded == {}


def test_no_more_than_is_a_price_not_a_negation() -> None:
    intent = parse("no more than 40")
    assert intent.price_max == 40 and intent.excluded == {}


def test_a_negation_with_nothing_after_it_is_dropped() -> None:
    intent = parse("red dress not")
    assert intent.excluded == {} and intent.rest == "" and intent.colour == "Red"


# attributes beyond colour and category


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("striped shirt", "pattern", "Striped"),
        ("floral dress", "pattern", "Floral"),
        ("full sleeve t shirt", "sleeve_length", "Long Sleeves"),
        ("half sleeves shirt", "sleeve_length", "Short Sleeves"),
        ("v neck tee", "neckline", "V-Neck"),
        ("polo t shirt", "neckline", "Polo Collar"),
        ("cotton kurta", "material", "Cotton"),
        ("linen shirt", "material", "Linen"),
        ("slim fit jeans", "fit", "Slim Fit"),
        ("party wear dress", "occasion", "Party"),
        ("office shirt", "occasion", "Formal"),
    ],
)
def test_other_attributes(query: str, field: str, value: str) -> None:
    assert getattr(parse(query), field) == value


# everything at once


def test_a_combined_query(brands: list[str]) -> None:
    intent = parse("red nike running shoes for men under 3000 not black", brands)
    assert intent.category == "Sports Shoes"
    assert intent.colour == "Red" and "Maroon" in intent.colour_near
    assert intent.brand == "Nike"
    assert intent.gender == "Men"
    assert intent.price_max == 3000 and intent.price_min is None
    assert intent.excluded == {"colour": ["Black"]}
    assert intent.rest == ""
    understood = intent.as_dict()
    assert understood["brand"] == "Nike" and understood["price_max"] == 3000
    assert isinstance(understood["price_max"], int)
    assert understood["excluded"] == {"colour": ["Black"]}


def test_spans_say_which_words_produced_each_part() -> None:
    query = "Red Nike shoes for men under $50, not black"
    intent = parse(query)
    spans = {span.key: span for span in intent.spans}
    assert spans["colour"].words == "Red" and spans["brand"].words == "Nike"
    assert spans["category"].words == "shoes" and spans["gender"].words == "for men"
    assert spans["price_max"].words == "under $50" and spans["price_max"].value == "50"
    assert spans["excluded.colour"].words == "not black" and spans["excluded.colour"].value == "Black"
    for span in intent.spans:
        assert query[span.start : span.end] == span.words
    assert [s.start for s in intent.spans] == sorted(s.start for s in intent.spans)


def test_rest_keeps_the_words_not_understood() -> None:
    intent = parse("red and white striped shirt with pockets")
    assert (intent.colour, intent.pattern, intent.category) == ("Red", "Striped", "Shirt")
    assert intent.rest == "white pockets"  # a second colour is left to keyword search


def test_as_dict_has_only_the_keys_found_and_is_json() -> None:
    understood = parse("navy tees").as_dict()
    assert set(understood) == {"category", "colour", "colour_near", "spans"}
    assert understood["colour_near"] == ["Blue"]
    assert json.loads(json.dumps(understood)) == understood
    assert parse("").as_dict() == {}
    assert parse("floral").as_dict()["spans"] == [
        {"key": "pattern", "value": "Floral", "words": "floral", "start": 0, "end": 6}
    ]


# bad input: always an Intent, never an exception


@pytest.mark.parametrize("query", ["", "   ", "\t\n", "the and of for", "show me some", "please find any"])
def test_empty_and_stop_word_queries_are_empty(query: str) -> None:
    intent = parse(query)
    assert intent.empty and intent.as_dict() == {} and intent.rest == ""


@pytest.mark.parametrize(
    "query",
    [
        "👗🔥",
        "red 👗 dress 🔥🔥",
        '"red" * NEAR dress -: ;',
        "red* OR NEAR(dress shirt, 5)",
        "'; DROP TABLE products; --",
        "colour:red title:dress",
        "dress^2 {shirt} [jeans]",
        "红色连衣裙",
        "robe rouge",
        "красное платье",
        "فستان أحمر",
        "\x00\x01 red",
        "\ud800 dress",
        "- - -",
        "not",
        "-",
        "between and",
        "under $",
        "9" * 400,
        "under 99999999999999999999",
        "a" * 600,
    ],
)
def test_bad_input_still_reads(query: str) -> None:
    intent = parse(query)
    assert isinstance(intent, Intent)
    assert not SYNTAX.search(intent.rest)
    assert len(intent.text) <= MAX_QUERY_CHARS
    for span in intent.spans:
        assert intent.text[span.start : span.end] == span.words
    json.dumps(intent.as_dict())


def test_syntax_characters_do_not_hide_the_words() -> None:
    intent = parse('"red" * NEAR dress -: ;')
    assert (intent.colour, intent.category, intent.rest) == ("Red", "Dress", "")


def test_long_queries_are_cut_at_a_word_end() -> None:
    intent = parse("red dress " * 60)
    assert intent.truncated and len(intent.text) <= MAX_QUERY_CHARS
    assert intent.text.endswith(("red", "dress"))
    assert intent.colour == "Red" and intent.category == "Dress"
    assert not parse("red dress").truncated


def test_a_non_string_reads_as_empty() -> None:
    assert parse_query(None).empty  # type: ignore[arg-type]


def test_random_text_never_raises(brands: list[str]) -> None:
    rng = random.Random(15)
    alphabet = "abcdeilnorst -'\"*:;,/&$₹<>+0123456789éü👗红\t"
    words = ["red", "not", "nike", "under", "50", "-", "no", "print", "men's", "for", "or", "and", "shoes", "3k"]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        text += " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        intent = parse_query(text, brands)
        assert not SYNTAX.search(intent.rest)
        for span in intent.spans:
            assert intent.text[span.start : span.end] == span.words


# the data


def test_query_words_load_and_are_strings() -> None:
    words = query_words()
    assert "no" in words.vocab.phrases and words.vocab.phrases["no"] == (("negation", "not"),)
    assert {"on", "the", "near"} <= words.stop
    assert query_words() is words


def test_accents_fold_without_moving_offsets() -> None:
    assert fold_accents("Lévis Ñandú straße") == "Levis Nandu straße"
    assert len(fold_accents("ﬁ café")) == len("ﬁ café")
