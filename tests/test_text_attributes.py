"""Text attributes: vocabulary matching, ambiguity rules, normalisation, agreement on the Myntra titles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sveta.catalog.records import AttributeRecord
from sveta.eval.text_attributes import evaluate_text_attributes
from sveta.ingest.styles import COLUMNS, read_styles
from sveta.ingest.text_attributes import extract_text_attributes
from sveta.vocab.attributes import _phrase_keys, vocabulary
from sveta.vocab.reading import category_group, normalize_value

SHARED = Path(__file__).resolve().parents[2] / "shared"
STYLES = SHARED / "datasets" / "myntra-small" / "styles.csv"
LOVE_THE_LABEL = SHARED / "fixtures" / "shopify" / "love-the-label-products.json"


@pytest.fixture(scope="module")
def styles_csv() -> Path:
    if not STYLES.is_file():
        pytest.skip(f"the shared Myntra styles.csv is not at {STYLES}: put shared/ beside the checkout")
    return STYLES


def values(records: list[AttributeRecord], name: str) -> list[str]:
    return [r.value for r in records if r.name == name]


def one(records: list[AttributeRecord], name: str) -> AttributeRecord:
    found = [r for r in records if r.name == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


# vocabulary


def test_vocabulary_has_the_required_sections_and_every_category_a_group() -> None:
    vocab = vocabulary()
    for name in ("category", "gender", "colour", "pattern", "sleeve_length", "neckline", "material", "fit"):
        assert name in vocab.attributes
    assert set(vocab.attributes["gender"].values) == {"Men", "Women", "Boys", "Girls", "Unisex"}
    category = vocab.attributes["category"]
    assert len(category.values) > 100
    assert set(category.values) == set(category.groups)
    assert vocabulary() is vocab  # cached


def test_a_phrase_with_two_values_is_a_data_error() -> None:
    spec = {"values": {"Blue": ["navy"], "Navy Blue": ["navy"]}}
    with pytest.raises(ValueError, match="navy"):
        _phrase_keys("colour", spec)


def test_colour_canonicals_are_myntra_base_colours(styles_csv: Path) -> None:
    rows, _ = read_styles(styles_csv)
    base_colours = {row["baseColour"] for row in rows if row["baseColour"]}
    assert base_colours <= set(vocabulary().attributes["colour"].values)


# categories


@pytest.mark.parametrize(
    "title",
    ["Cotton T-Shirt", "Cotton tshirt", "Cotton Tshirts", "Cotton Tee", "Cotton tees", "Cotton T Shirt"],
)
def test_t_shirt_synonyms(title: str) -> None:
    assert one(extract_text_attributes(title), "category").value == "T-Shirt"


def test_longest_phrase_wins() -> None:
    records = extract_text_attributes("Nike Men Navy Blue Sports Shoes")
    assert one(records, "category").value == "Sports Shoes"
    assert values(records, "colour") == ["Navy Blue"]


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Floral Midi Dress with Belt", "Dress"),
        ("Printed Polo T-shirt for Men", "T-Shirt"),
        ("Slim Fit Oxford Shirt", "Shirt"),
        ("Wool Peacoat", "Coat"),
        ("Leather Belt Bag", "Waist Pouch"),
        ("Tie-Dye Hoodie", "Sweatshirt"),  # a tie-dye is no tie
        ("Cap Sleeve Top", "Top"),
    ],
)
def test_category_is_the_product_noun(title: str, category: str) -> None:
    assert one(extract_text_attributes(title), "category").value == category


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Ava Skirt in Kaleidoscope Scarf Print", "Skirt"),  # "in" brings the print, not a second product
        ("Lenny Jacket in Indigo", "Jacket"),
        ("Cashmere Scarf in Tie Print", "Scarf"),
        ("Glow in Dark T-shirt", "T-Shirt"),  # no product noun before "in": the one after it counts
    ],
)
def test_what_follows_in_is_no_product(title: str, category: str) -> None:
    records = extract_text_attributes(title, product_type="Shop All;Clothing/Bottoms")
    assert one(records, "category").value == category


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Shoe Bag", "Bag"),
        ("Sneaker Storage Bag", "Bag"),
        ("Dress Bag for Travel", "Bag"),
        ("Laptop Bag", "Laptop Bag"),
        ("Dress Shirt", "Shirt"),
        ("Shirt Dress", "Dress"),
        ("Hoodie Dress", "Dress"),
        ("Boot Socks", "Socks"),
        ("Sock Boots", "Boots"),
        ("Sneaker Cleaning Kit", "Shoe Accessories"),
        # a broad head that takes in the specific noun is refined by it; a list is no compound
        ("Backpack Bag", "Backpack"),
        ("Parka Outerwear", "Coat"),
        ("Shoes & Bag", "Casual Shoes"),
    ],
)
def test_a_compound_of_product_nouns_is_its_head(title: str, category: str) -> None:
    assert one(extract_text_attributes(title), "category").value == category


def test_a_broad_compound_head_is_refined_only_by_a_type_it_takes_in() -> None:
    assert one(extract_text_attributes("Shoe Bag", product_type="Backpacks"), "category").value == "Backpack"
    record = one(extract_text_attributes("Shoe Bag", product_type="Shoes"), "category")
    assert (record.value, record.evidence) == ("Bag", "Bag")


@pytest.fixture(scope="module")
def love_the_label() -> list[dict[str, object]]:
    if not LOVE_THE_LABEL.is_file():
        pytest.skip(f"the shared Shopify fixture is not at {LOVE_THE_LABEL}: put shared/ beside the checkout")
    products: list[dict[str, object]] = json.loads(LOVE_THE_LABEL.read_text())["products"]
    return products


LOVE_THE_LABEL_EXPECTED = {
    "Lenny Jacket in Indigo": ("Jacket", ["Navy Blue"], []),
    "Madden Midi Skirt in Wuthering Winds Print": ("Skirt", [], ["Printed"]),
    "Faye Knit Dress in Multi Stripe": ("Dress", ["Multi"], ["Striped"]),
    "Ava Skirt in Kaleidoscope Scarf Print": ("Skirt", [], ["Printed"]),
    "Beckett Top in Cream": ("Top", ["Cream"], []),
}


def test_love_the_label_products(love_the_label: list[dict[str, object]]) -> None:
    seen = {}
    for product in love_the_label:
        tags = product.get("tags") or []
        records = extract_text_attributes(
            str(product["title"]),
            str(product.get("product_type") or ""),
            [str(t) for t in tags] if isinstance(tags, list) else [],
            str(product.get("body_html") or ""),
        )
        found = (one(records, "category").value, values(records, "colour"), values(records, "pattern"))
        seen[product["title"]] = found
    assert seen == LOVE_THE_LABEL_EXPECTED


def test_category_falls_back_on_product_type_and_a_specific_type_beats_a_generic_one() -> None:
    record = one(extract_text_attributes("The Ava", product_type="Dresses"), "category")
    assert (record.value, record.evidence, record.confidence) == ("Dress", "Dresses", 0.85)
    record = one(extract_text_attributes("Wool Peacoat", product_type="Clothing/Outerwear"), "category")
    assert record.value == "Coat"
    record = one(extract_text_attributes("The Ava", product_type="Clothing/Outerwear"), "category")
    assert record.value == "Outerwear" and record.confidence < 0.85


# gender


@pytest.mark.parametrize(
    ("title", "gender"),
    [
        ("Men's Jacket", "Men"),
        ("Mens Jacket", "Men"),
        ("Womens Tee", "Women"),
        ("Women’s Tee", "Women"),
        ("Ladies Top", "Women"),
        ("Arrow Woman White Shirt", "Women"),
        ("Palm Tree Kids Boys Shorts", "Boys"),
        ("Doodle Kids-Girls Dress", "Girls"),
        ("Girl's Dress", "Girls"),
        ("Nike Unisex Cap", "Unisex"),
        ("Socks for Men & Women", "Unisex"),
        ("Kids Shorts", None),  # an age, not a gender
        ("Spider-Man Graphic Tee", None),
        ("Man-made Leather Belt", None),
    ],
)
def test_gender_words(title: str, gender: str | None) -> None:
    assert values(extract_text_attributes(title), "gender") == ([gender] if gender else [])


def test_kids_sets_age_group() -> None:
    records = extract_text_attributes("Disney Kids Red Casual Shoes")
    assert one(records, "age_group").value == "Kids"
    assert values(records, "gender") == []


def test_women_is_not_men() -> None:
    record = one(extract_text_attributes("Puma Women Black Shoes"), "gender")
    assert (record.value, record.evidence) == ("Women", "Women")


# colour


def test_colours_are_multi_valued_with_the_primary_first() -> None:
    records = extract_text_attributes("Mark Taylor Men Blue & White Striped Shirt")
    colours = [r for r in records if r.name == "colour"]
    assert [c.value for c in colours] == ["Blue", "White"]
    assert colours[0].confidence > colours[1].confidence


def test_the_colour_of_the_product_noun_is_primary() -> None:
    assert values(extract_text_attributes("Lino Perros Women Blue Zip Red Wallet"), "colour")[0] == "Red"


def test_adjacent_colour_words_make_one_colour_headed_by_the_last() -> None:
    record = one(extract_text_attributes("Esprit Women Brown Steel Watches"), "colour")
    assert (record.value, record.evidence) == ("Steel", "Brown Steel")
    assert normalize_value("colour", "Coral Red") == "Red"


@pytest.mark.parametrize(
    ("title", "colours"),
    [
        ("Red Tape Men Brown Leather Casual Shoes", ["Brown"]),
        ("Black Coffee Men White Check Shirt", ["White"]),
        ("Indigo Nation Men Grey Shirt", ["Grey"]),
        ("Pink Floyd Men Grey Sweatshirts", ["Grey"]),
        ("Red Tape Men Formal Shoes", []),
        # not brands: every word before the gender word is vocabulary, or the colour is not first
        ("Black Leather Men's Jacket", ["Black"]),
        ("Kiara Black Women Casual Handbag", ["Black"]),
    ],
)
def test_colour_words_in_a_leading_brand_are_ignored(title: str, colours: list[str]) -> None:
    assert values(extract_text_attributes(title), "colour") == colours


@pytest.mark.parametrize(
    "title", ["Tank Top", "Bluetooth Headphones", "Whitening Face Cream", "Goldstar Sandals", "Redwood Belt"]
)
def test_colour_words_inside_other_words_do_not_count(title: str) -> None:
    assert values(extract_text_attributes(title), "colour") == []


def test_colour_synonyms() -> None:
    assert values(extract_text_attributes("Navy Polo"), "colour") == ["Navy Blue"]
    assert values(extract_text_attributes("Ivory Kurta"), "colour") == ["Cream"]
    assert values(extract_text_attributes("Off-White Top"), "colour") == ["Off White"]
    assert values(extract_text_attributes("Grey Melange Tee"), "colour") == ["Grey Melange"]


# the other attributes


@pytest.mark.parametrize(
    ("title", "name", "value", "evidence"),
    [
        ("Solid Red Tee", "pattern", "Solid", "Solid"),
        ("Men Stripes Blue Shirt", "pattern", "Striped", "Stripes"),
        ("Gingham Shirt", "pattern", "Checked", "Gingham"),
        ("Floral Print Dress", "pattern", "Floral", "Floral Print"),
        ("Polka Dot Skirt", "pattern", "Polka Dot", "Polka Dot"),
        ("Half Sleeves Shirt", "sleeve_length", "Short Sleeves", "Half Sleeves"),
        ("Long-Sleeved Top", "sleeve_length", "Long Sleeves", "Long-Sleeved"),
        ("Sleeveless Dress", "sleeve_length", "Sleeveless", "Sleeveless"),
        ("3/4 Sleeve Kurta", "sleeve_length", "Three-Quarter Sleeves", "3/4 Sleeve"),
        ("V-Neck Sweater", "neckline", "V-Neck", "V-Neck"),
        ("Crew Neck Tee", "neckline", "Round Neck", "Crew Neck"),
        ("Mandarin Collar Shirt", "neckline", "Mandarin Collar", "Mandarin Collar"),
        ("Puma Men Black Polo Tshirts", "neckline", "Polo Collar", "Polo Tshirts"),
        ("Linen Shirt", "material", "Linen", "Linen"),
        ("Leatherette Backpack", "material", "Faux Leather", "Leatherette"),
        ("Slim Fit Jeans", "fit", "Slim Fit", "Slim Fit"),
        ("Oversized Hoodie", "fit", "Oversized", "Oversized"),
        ("Men Formal Shoes", "occasion", "Formal", "Formal"),
        ("Running Shorts", "occasion", "Sports", "Running"),
        ("Party Wear Dress", "occasion", "Party", "Party Wear"),
    ],
)
def test_attribute_examples(title: str, name: str, value: str, evidence: str) -> None:
    record = one(extract_text_attributes(title), name)
    assert (record.value, record.evidence) == (value, evidence)


def test_records_carry_origin_confidence_and_the_exact_words() -> None:
    title = "U.S. Polo Assn. Men NAVY-BLUE Striped Polo T-Shirt"
    records = extract_text_attributes(title)
    assert records
    for record in records:
        assert record.origin == "text"
        assert 0 < record.confidence <= 1
        assert record.evidence and record.evidence in title
        assert record.model_version and record.model_version.startswith("vocab-")
    assert one(records, "colour").evidence == "NAVY-BLUE"


def test_html_description_is_stripped_and_only_fills_gaps() -> None:
    description = (
        "<script>var colour = 'red';</script><p>Soft <b>100% organic cotton</b> tee &amp; more.</p>"
        "<ul><li>Short sleeves</li><li>Relaxed fit</li></ul><p>Pairs with white sneakers.</p>"
    )
    tags = ["Women", "colour:navy"]
    records = extract_text_attributes("The Classic Tee", tags=tags, description=description)
    material = one(records, "material")
    assert (material.value, material.evidence, material.confidence) == ("Cotton", "organic cotton", 0.6)
    assert one(records, "sleeve_length").value == "Short Sleeves"
    assert one(records, "fit").value == "Relaxed Fit"
    assert one(records, "gender").confidence == 0.8  # from a tag
    assert values(records, "colour") == ["Navy Blue"]  # the tag's colour; the sneakers' white is not read
    alone = extract_text_attributes("The Classic Tee", description=description)
    assert values(alone, "colour") == []  # "pairs with white sneakers" is the sneakers' colour
    assert "red" not in [r.evidence for r in alone]
    colour = one(extract_text_attributes("The Classic Tee", description="<p>Soft white jersey.</p>"), "colour")
    assert colour.value == "White" and colour.confidence < 0.6


@pytest.mark.parametrize(
    "description",
    [
        "Our heaviest flannel, brushed for softness. Pair it with our black jeans.",
        "Brushed flannel. Wear with black jeans.",
        "Brushed flannel that goes with black denim.",
        "Brushed flannel. Style it with black trousers and boots.",
        "Brushed flannel, perfect with black jeans.",
        "Brushed flannel. Looks great with a black beanie.",
        "Brushed flannel. Model is wearing a size M with black jeans.",
        "Brushed flannel. Shop the matching skirt and our black tote.",
        "Brushed flannel with black horn buttons.",
        "Brushed flannel. Also available in black.",
    ],
)
def test_description_words_about_other_things_do_not_count(description: str) -> None:
    records = extract_text_attributes("Plaid Flannel Overshirt", description=description)
    assert values(records, "colour") == []
    assert one(records, "category").value == "Shirt"


def test_a_styling_tip_says_nothing_about_the_product() -> None:
    records = extract_text_attributes("The Harlow", description="Soft flannel. Pair it with our slim fit chinos.")
    assert values(records, "category") == values(records, "fit") == []
    # the product's own colour and a pair of things still count
    records = extract_text_attributes("The Sock", description="A pair of navy socks, with white stripes.")
    assert values(records, "colour") == ["Navy Blue"]
    records = extract_text_attributes("The Slip", description="Plus size black slip dress.")
    assert values(records, "colour") == ["Black"]


def test_a_description_colour_never_overrides_the_title_colour() -> None:
    description = "<p>Deep navy brushed cotton.</p><p>Also in black.</p>"
    records = extract_text_attributes("Red Plaid Overshirt", description=description)
    colour = one(records, "colour")
    assert (colour.value, colour.confidence) == ("Red", 0.9)


@pytest.mark.parametrize(
    ("title", "product_type", "name", "expected"),
    [
        ("Bikini Top - Leopard", "Swimwear", "category", ["Swimwear"]),
        ("Lounge Set - Grey Marl", "Loungewear", "category", ["Night Suit"]),
        ("Jewelry Travel Case", "Accessories", "category", ["Travel Accessory"]),
        ("Tennis Bracelet Silver", "Jewelry", "occasion", []),
        ("Women's Sandal in Gold Metallic", "Sandals", "colour", ["Gold"]),
        ("Women's Cable Knit Beanie in Oat", "Hats", "colour", ["Beige"]),
        ("Wrap Midi Dress in Sage Floral", "Dresses", "colour", ["Green"]),
        ("Mini Bucket Bag in Black Croc", "Handbags", "pattern", ["Animal Print"]),
        ("Vintage Wash Graphic T-Shirt (Black/White)", "Tees", "colour", ["Black", "White"]),
        ("Men's Classic Leather Sneakers White/Gum", "Sneakers", "category", ["Casual Shoes"]),
        ("Womens Chunky Platform Sneaker - Black", "Footwear", "gender", ["Women"]),
        ("Men's Swim Shorts in Navy Stripe", "Swim", "pattern", ["Striped"]),
    ],
)
def test_shopify_listings(title: str, product_type: str, name: str, expected: list[str]) -> None:
    assert values(extract_text_attributes(title, product_type), name) == expected


def test_empty_input() -> None:
    assert extract_text_attributes(None) == []
    assert extract_text_attributes("", description="<p></p>") == []


# normalize_value and category_group


@pytest.mark.parametrize(
    ("name", "value", "canonical"),
    [
        ("category", "Tshirts", "T-Shirt"),
        ("category", "Clothing/Outerwear", "Outerwear"),
        ("category", "Bottoms", "Bottoms"),
        ("category", "Tops", "Top"),
        ("category", "Dresses", "Dress"),
        ("category", "Jacket", "Jacket"),
        ("category", "Skirt", "Skirt"),
        ("category", "Perfume and Body Mist", "Perfume"),
        ("colour", "navy", "Navy Blue"),
        ("colour", "Navy Blue", "Navy Blue"),
        ("colour", "Blue/White", "Blue"),
        ("gender", "womens", "Women"),
        ("gender", "MEN", "Men"),
        ("gender", "Kids", None),
        ("category", "Gift Card", None),
        ("colour", "", None),
        ("no such attribute", "Blue", None),
    ],
)
def test_normalize_value(name: str, value: str, canonical: str | None) -> None:
    assert normalize_value(name, value) == canonical


def test_category_group() -> None:
    assert category_group("T-Shirt") == "topwear"
    assert category_group("Jeans") == "bottomwear"
    assert category_group("Dress") == "dress"
    assert category_group("Jacket") == "outerwear"
    assert category_group("Sports Shoes") == "footwear"
    assert category_group("Handbag") == "bag"
    assert category_group("Briefs") == "innerwear"
    assert category_group("Tshirts") == "topwear"
    assert category_group("Spaceship") is None


def test_every_myntra_article_type_maps_to_a_category_with_a_group(styles_csv: Path) -> None:
    rows, _ = read_styles(styles_csv)
    article_types = sorted({row["articleType"] for row in rows})
    assert len(article_types) >= 70
    unmapped = [a for a in article_types if normalize_value("category", a) is None]
    assert unmapped == []
    groupless = [a for a in article_types if category_group(normalize_value("category", a) or "") is None]
    assert groupless == []


# agreement with the structured columns


def test_agreement_on_the_myntra_titles(styles_csv: Path) -> None:
    result = evaluate_text_attributes(styles_csv)
    assert result["n_items"] == 9583
    assert result["gender_agreement"] >= 0.95
    assert result["colour_agreement"] >= 0.95
    # measured: gender 0.985, colour 0.967, category 0.999 coverage; category agreement 0.956
    assert result["gender_coverage"] >= 0.97
    assert result["colour_coverage"] >= 0.95
    assert result["category_coverage"] >= 0.98
    assert result["category_agreement"] >= 0.93


def test_malformed_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    lines = [
        ",".join(COLUMNS),
        "1,Men,Apparel,Topwear,Tshirts,Navy Blue,Fall,2011,Casual,Puma Men Navy Blue Tshirt",
        "2,Women,Apparel,Topwear,Tops,Red,Fall,2011,Casual,Roxy Women Red Top",
        # an unquoted comma in the title shifts the columns
        "3,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Indigo, Nation Men Blue Shirt",
    ]
    path.write_text("\n".join(lines) + "\n")
    result = evaluate_text_attributes(path)
    assert (result["n_items"], result["n_malformed"]) == (2, 1)
    assert result["gender_coverage"] == result["gender_agreement"] == 1.0
    assert result["colour_agreement"] == result["category_agreement"] == 1.0
