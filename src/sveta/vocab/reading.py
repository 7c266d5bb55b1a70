"""Reading a listing's words with the vocabulary: category, gender, colours, pattern, sleeve and more."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sveta.vocab.attributes import TOKEN as _TOKEN
from sveta.vocab.attributes import AttributeVocab, Vocabulary, phrase_key, vocabulary
from sveta.vocab.html_text import html_to_text

# The title and the seller's type and tags describe the product; a description also talks about other things
# (styling tips, care), so it only fills attributes the listing itself leaves open.
SOURCE_CONFIDENCE = {"title": 0.9, "product_type": 0.85, "tags": 0.8, "description": 0.6}
LISTING_SOURCES = ("title", "product_type", "tags")
GENERIC_FACTOR = 0.7  # a broad type ("Outerwear") says less than a specific one ("Parka")
RANK_FACTOR = 0.85  # each further value of a multi-valued attribute is less likely the main one
# Descriptions name the colours of other things too ("the white sneakers in the photo").
DESCRIPTION_FACTOR = {"colour": 0.7}
MAX_BRAND_WORDS = 5

# Punctuation that ends a phrase: "Navy, Blue" is two colours, "Navy-Blue" and "Navy Blue" are one.
_BREAK = re.compile(r"[,;:|()\[\]{}!?•\n\r\t]|\.\s")
# What follows these words describes something else: "Dress with Belt" is a dress, and "Skirt in Scarf
# Print" a skirt ("in" brings the colour, print or cloth, whose words still count).
_CONNECTORS = frozenset({"with", "for", "featuring", "including", "plus", "w", "in"})
# Between a modifying product noun and the head of a compound: "Shoe Bag", "Shoe Storage Bag", not "Shoes & Bag".
_LIST_WORD = re.compile(r"[&/+]|\b(?:and|or|n)\b", re.IGNORECASE)
# A description's styling tip is about other things up to the sentence's end: "pair it with our black jeans".
_STYLING = re.compile(
    r"\b(?:pairs?|paired|pairing|wear|wears|worn|wearing|style|styled|styling|team|teamed|layer|layered|goes|go"
    r"|match|matches|perfect|great|works?)\b(?:\s+[^\W\d_]+){0,3}?\s+with\b"
    r"|\b(?:and|or|with)\s+our\b|\bshop\s+the\b|\bcomplete\s+the\s+look\b|\balso\s+(?:available\s+|comes\s+)?in\b",
    re.IGNORECASE,
)
# After these, a description's colour words up to the clause's end are another thing's ("with white stitching").
_COLOUR_CONNECTOR = re.compile(r"\b(?:with|w/|alongside|plus(?![\s-]*size)|pair(?!\s+of\b))(?=\W)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
_GROUP_GAP = re.compile(r"(?:\s|[&/,+-]|\band\b)*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Match:
    name: str
    value: str
    start: int  # token indices, end exclusive
    end: int
    evidence: str
    span: tuple[int, int]  # character offsets of the evidence in its text


def _scan(text: str, vocab: Vocabulary) -> list[_Match]:
    """Leftmost-longest phrase matches per attribute, over whole words."""
    tokens = [(m.start(), m.end(), m.group().casefold()) for m in _TOKEN.finditer(text)]
    free_from: dict[str, int] = {}  # attribute -> first token a new match of it may start at
    matches: list[_Match] = []
    for i in range(len(tokens)):
        longest: dict[str, tuple[int, str | None]] = {}
        key = ""
        for j in range(i, len(tokens)):
            if j > i and _BREAK.search(text, tokens[j - 1][1], tokens[j][0]):
                break
            key += tokens[j][2]
            if key not in vocab.prefixes:
                break
            for name, value in vocab.phrases.get(key, ()):
                longest[name] = (j, value)
        for name, (j, value) in longest.items():
            if free_from.get(name, 0) > i:
                continue
            free_from[name] = j + 1
            if value is not None:
                span = (tokens[i][0], tokens[j][1])
                matches.append(_Match(name, value, i, j + 1, text[span[0] : span[1]], span))
    return matches


def _merge_compounds(matches: list[_Match], text: str) -> list[_Match]:
    """Colour words side by side name one colour, the last one being the head: "Coral Red" is a red,
    "Steel Grey" a grey; "Red & Black" and "Red/Black" stay two colours."""
    merged: list[_Match] = []
    for match in matches:
        prev = merged[-1] if merged else None
        if (
            match.name == "colour"
            and prev is not None
            and prev.name == "colour"
            and prev.end == match.start
            and not text[prev.span[1] : match.span[0]].strip(" -")
        ):
            span = (prev.span[0], match.span[1])
            merged[-1] = _Match("colour", match.value, prev.start, match.end, text[span[0] : span[1]], span)
        else:
            merged.append(match)
    return merged


def _product_colour_first(matches: list[_Match], text: str) -> list[_Match]:
    """Put first the colour that qualifies the product noun ("Blue Zip Red Wallet" is red): the one reached
    walking back from the noun over vocabulary words only. Without one, title order stands."""
    attr = vocabulary().attributes["category"]
    category = _head(_before_connector([m for m in matches if m.name == "category"], text), attr, text)
    if category is None:
        return matches
    colour_ends = {m.end for m in matches if m.name == "colour"}
    # Of the words ending at one place, the longest match carries the walk furthest back.
    ending = {m.end: m for m in sorted(matches, key=lambda m: -m.start) if m.name != "colour"}
    at = category.start
    while at not in colour_ends and at in ending and ending[at].start < at:
        at = ending[at].start
    colours = [m for m in matches if m.name == "colour"]
    found = [i for i, m in enumerate(colours) if m.end == at]
    if not found:
        return matches
    first = found[0]
    # "Blue & White Striped Shirt" is blue on white: a run of colours joined by "&" leads with its first.
    while first > 0 and _GROUP_GAP.fullmatch(text[colours[first - 1].span[1] : colours[first].span[0]]):
        first -= 1
    return [colours[first]] + [m for m in matches if m is not colours[first]]


def _drop_brand(matches: list[_Match]) -> list[_Match]:
    """Marketplace titles open with the brand, then the gender ("Red Tape Men Brown Shoes"): a title that
    starts with a colour word, followed within a few words by a gender word, has a brand made of the words
    before it whenever one of those words is not vocabulary ("Tape"); their matches are the brand's."""
    people = [m.start for m in matches if m.name in ("gender", "age_group")]
    if not people or not 2 <= min(people) <= MAX_BRAND_WORDS:
        return matches
    cut = min(people)
    if not any(m.name == "colour" and m.start == 0 for m in matches):
        return matches
    covered = {t for m in matches for t in range(m.start, m.end)}
    if all(t in covered for t in range(cut)):
        return matches  # "Black Leather Men's Jacket" is all description, no brand
    return [m for m in matches if m.name in ("gender", "age_group") or m.start >= cut]


def _segments(
    title: str | None, product_type: str | None, tags: Sequence[str], description: str | None
) -> list[tuple[str, str]]:
    segments = [("title", title or ""), ("product_type", product_type or "")]
    segments += [("tags", tag) for tag in tags if tag]  # one tag at a time: no phrase spans two tags
    segments.append(("description", html_to_text(description) or ""))
    return [(source, text) for source, text in segments if text.strip()]


def _spans(pattern: re.Pattern[str], end: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """From each match of `pattern` to the next match of `end` (or the text's end)."""
    return [(f.start(), e.start() if (e := end.search(text, f.end())) else len(text)) for f in pattern.finditer(text)]


def _about_this_product(matches: list[_Match], text: str) -> list[_Match]:
    """A description's words minus those about other things: every word of a styling tip ("pair it with our
    slim black jeans"), and the colours after "with" ("with white stitching") up to the clause's end."""
    styling = _spans(_STYLING, _SENTENCE_END, text)
    trims = styling + _spans(_COLOUR_CONNECTOR, _BREAK, text)
    return [m for m in matches if not any(a <= m.span[0] < b for a, b in (trims if m.name == "colour" else styling))]


def _found(segments: list[tuple[str, str]], vocab: Vocabulary) -> dict[str, list[tuple[str, _Match]]]:
    found: dict[str, list[tuple[str, _Match]]] = {}
    for source, text in segments:
        matches = _merge_compounds(_scan(text, vocab), text)
        if source == "title":
            matches = _product_colour_first(_drop_brand(matches), text)
        elif source == "description":
            matches = _about_this_product(matches, text)
        for match in matches:
            found.setdefault(match.name, []).append((source, match))
    return found


def _by_source(hits: list[tuple[str, _Match]]) -> list[tuple[str, list[_Match]]]:
    """Hits grouped per source in listing order; the description only when the listing has none."""
    grouped: dict[str, list[_Match]] = {}
    for source, match in hits:
        grouped.setdefault(source, []).append(match)
    ordered = [(s, grouped[s]) for s in LISTING_SOURCES if s in grouped]
    if not ordered and "description" in grouped:
        ordered = [("description", grouped["description"])]
    return ordered


def _head(matches: list[_Match], attr: AttributeVocab, text: str) -> _Match | None:
    """The product noun: the last category word, a specific one over a generic one ("Outerwear Parka",
    "Backpack Bag"), except that a compound headed by a generic noun of another group is that noun: a
    "Shoe Bag" is a bag (a specific head needs no rule: "Dress Shirt" is a shirt, "Boot Socks" socks)."""
    if not matches:
        return None
    last = matches[-1]
    specific = [m for m in matches if m.value not in attr.generic]
    if last.value not in attr.generic or not specific:
        return last
    modifier = specific[-1]
    gap = text[modifier.span[1] : last.span[0]]
    compound = not _BREAK.search(gap) and not _LIST_WORD.search(gap)
    return last if compound and not _covers(attr, last.value, modifier.value) else modifier


def _covers(attr: AttributeVocab, generic: str, specific: str) -> bool:
    """Whether a broad type takes in a specific one: Bag a backpack, Outerwear a parka, Clothing any garment."""
    group = attr.groups.get(generic)
    return group == attr.groups.get(specific) or group == "clothing"


def _gender(matches: list[_Match]) -> tuple[str, str]:
    """One gender from all the gender words in one text: both sexes, or "unisex", means Unisex."""
    values = {m.value for m in matches}
    evidence = ", ".join(dict.fromkeys(m.evidence for m in matches))
    if "Unisex" in values or {"Men", "Women"} <= values or {"Boys", "Girls"} <= values:
        return "Unisex", evidence
    for kid, adult in (("Boys", "Men"), ("Girls", "Women")):
        if kid in values and values <= {kid, adult}:
            return kid, evidence  # "Kids Boys" and "Men / Boys" sizes are boys' clothes
    first = matches[0]
    return first.value, first.evidence


def _before_connector(text_matches: list[_Match], text: str) -> list[_Match]:
    # A connector at the very start is no connector: "W" is also a brand.
    words = [m.group().casefold() for m in _TOKEN.finditer(text)]
    stop = next((i for i, w in enumerate(words) if w in _CONNECTORS and i > 0), len(words))
    head = [m for m in text_matches if m.end <= stop]
    return head or text_matches


def _pick_single(
    attr: AttributeVocab, hits: list[tuple[str, _Match]], texts: dict[str, str]
) -> list[tuple[str, float, str]]:
    groups = _by_source(hits)
    if attr.name == "category":
        return _pick_category(attr, groups, texts)
    source, matches = groups[0]
    if attr.name == "gender":
        value, evidence = _gender(matches)
        return [(value, SOURCE_CONFIDENCE[source], evidence)]
    return [(matches[0].value, SOURCE_CONFIDENCE[source], matches[0].evidence)]


def _pick_category(
    attr: AttributeVocab, groups: list[tuple[str, list[_Match]]], texts: dict[str, str]
) -> list[tuple[str, float, str]]:
    """The first source's product noun that is specific; a broad one ("Outerwear") only when no source names
    a specific one, and a broad compound head ("Shoe Bag") only refined by a type it covers ("Backpack")."""
    heads = [(s, _head(_before_connector(ms, texts.get(s, "")), attr, texts.get(s, ""))) for s, ms in groups]
    found = [(source, head) for source, head in heads if head is not None]
    if not found:
        return []
    specific = [(source, head) for source, head in found if head.value not in attr.generic]
    first, named = found[0][1], any(m.value not in attr.generic for m in dict(groups)[found[0][0]])
    if first.value in attr.generic and named:  # "Shoe Bag": a broad head beside a specific noun
        specific = [(s, h) for s, h in specific if _covers(attr, first.value, h.value)] + found[:1]
    source, head = (specific or found)[0]
    factor = GENERIC_FACTOR if head.value in attr.generic else 1.0
    return [(head.value, SOURCE_CONFIDENCE[source] * factor, head.evidence)]


def _pick_multi(hits: list[tuple[str, _Match]]) -> list[tuple[str, float, str]]:
    picked: dict[str, tuple[str, float, str]] = {}
    for source, matches in _by_source(hits):
        factor = DESCRIPTION_FACTOR.get(matches[0].name, 1.0) if source == "description" else 1.0
        for match in matches:
            if match.value not in picked:
                confidence = SOURCE_CONFIDENCE[source] * factor * RANK_FACTOR ** len(picked)
                picked[match.value] = (match.value, round(confidence, 3), match.evidence)
    return list(picked.values())


@dataclass(frozen=True, slots=True)
class Reading:
    """One value the words name, how sure the reading is, and the words that produced it."""

    name: str
    value: str
    confidence: float
    evidence: str


def read_attributes(
    title: str | None,
    product_type: str | None = None,
    tags: Sequence[str] = (),
    description: str | None = None,
) -> list[Reading]:
    """Attributes named by the listing's words: one reading per value, with the words that produced it."""
    vocab = vocabulary()
    segments = _segments(title, product_type, tags, description)
    texts = {source: text for source, text in segments if source != "tags"}
    found = _found(segments, vocab)
    readings: list[Reading] = []
    for name, attr in vocab.attributes.items():
        hits = found.get(name)
        if not hits:
            continue
        picked = _pick_multi(hits) if attr.multi else _pick_single(attr, hits, texts)
        readings.extend(Reading(name, value, round(c, 3), evidence) for value, c, evidence in picked)
    return readings


def normalize_value(name: str, value: str) -> str | None:
    """The vocabulary's canonical value for a seller's value of attribute `name`; None when none fits."""
    vocab = vocabulary()
    attr = vocab.attributes.get(name)
    if attr is None or not value or not value.strip():
        return None
    for attribute, canonical in vocab.phrases.get(phrase_key(value), ()):
        if attribute == name:
            return canonical  # the whole value is a known phrase (None when it is an ignored one)
    hits = [("title", m) for m in _merge_compounds(_scan(value, vocab), value) if m.name == name]
    if not hits:
        return None
    picked = _pick_multi(hits) if attr.multi else _pick_single(attr, hits, {"title": value})
    return picked[0][0] if picked else None


def category_group(category: str) -> str | None:
    """The taxonomy group (topwear, footwear, bag, ...) of a category, canonical or a known synonym."""
    groups = vocabulary().attributes["category"].groups
    if category in groups:
        return groups[category]
    canonical = normalize_value("category", category)
    return groups.get(canonical) if canonical else None


@functools.lru_cache(maxsize=4096)
def canonical(attribute: str, value: str) -> str:
    """The catalog's normalised form of a value (the vocabulary's name), so "Tshirts" and "T-Shirt" are one."""
    return normalize_value(attribute, value) or value.strip()
