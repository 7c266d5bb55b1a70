"""Query understanding: a shopper's words, read with the catalog's vocabulary, as a structured Intent."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sveta.vocab.attributes import TOKEN, vocabulary
from sveta.vocab.query_brands import BrandHit, brand_index, exact_brands, fuzzy_brands
from sveta.vocab.query_price import price_text, read_prices
from sveta.vocab.query_words import NEGATION, PRICE_BAND, PSEUDO, fold_accents, query_words
from sveta.vocab.reading import _before_connector, _gender, _head, _Match, _merge_compounds, _scan
from sveta.vocab.shades import shades

# A query is a few words; past this it is a pasted description, and reading more would only cost time
# (the matcher's work grows with the words). Longer text is cut at a word's end before it.
MAX_QUERY_CHARS = 256
MAX_NEGATION_GAP = 2  # stop words between "not" and what it negates: "not in black", "without any print"
# The vocabulary's attributes an Intent has a field for, in the order "understood" lists them.
ATTRIBUTES = ("category", "colour", "gender", "age_group", "pattern", "sleeve_length", "neckline", "material",
              "fit", "occasion")  # fmt: skip
_NEGATABLE = frozenset({*ATTRIBUTES, "brand", PRICE_BAND})  # "not cheap" excludes the low band
_PRICES = frozenset({"price_min", "price_max"})
_LIST_GAP = re.compile(r"[,/&]")  # "not black, navy" continues a negation as "or" does


@dataclass(frozen=True, slots=True)
class Span:
    """The words that produced one understood part: dropping them from the query drops the part (a chip)."""

    key: str  # a key of the understood object: "colour", "brand", "price_max", or "excluded.colour" for "not black"
    value: str
    words: str
    start: int  # character offsets in Intent.text; parts with the same offsets come from the same words
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "words": self.words, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Intent:
    """What a query asks for. Attributes hold the vocabulary's canonical values (one each: the first named;
    the words of any other go to `rest`). `price_band` ("low", "mid", "high") is a soft hint from words like
    "cheap", left to the catalog's own price spread. `excluded` maps an attribute, "brand", "price_band", or
    "words" (a negated word the vocabulary does not know) to the values the shopper does not want."""

    text: str = ""  # the query as read (cut to MAX_QUERY_CHARS); spans index it
    category: str | None = None
    colour: str | None = None
    colour_near: tuple[str, ...] = ()  # close shades of `colour`, nearest first: soft matches
    gender: str | None = None
    age_group: str | None = None
    pattern: str | None = None
    sleeve_length: str | None = None
    neckline: str | None = None
    material: str | None = None
    fit: str | None = None
    occasion: str | None = None
    brand: str | None = None  # as the catalog's brand list spells it
    price_min: float | None = None
    price_max: float | None = None
    price_band: str | None = None
    excluded: dict[str, list[str]] = field(default_factory=dict)
    rest: str = ""  # the words not understood, for keyword search: letters and digits only, no query syntax
    spans: tuple[Span, ...] = ()
    truncated: bool = False

    @property
    def empty(self) -> bool:
        """Nothing understood and no words left: the query asks for nothing."""
        return not self.spans and not self.rest

    def as_dict(self) -> dict[str, Any]:
        """The "understood" JSON object: only the keys found, and the spans that produced them."""
        found: dict[str, Any] = {}
        for name in (*ATTRIBUTES[:2], "colour_near", *ATTRIBUTES[2:], "brand", "price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and value != ():
                found[name] = _json_value(value)
        if self.price_band:
            found["price_band"] = self.price_band
        if self.excluded:
            found["excluded"] = {key: list(values) for key, values in self.excluded.items()}
        if self.spans:
            found["spans"] = [span.as_dict() for span in self.spans]
        return found


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 50, not 50.0
    return value


@dataclass(frozen=True, slots=True)
class _Part:
    """One thing the words say, over tokens [start, end): an attribute value, a brand, a price bound, a price
    band, a negation, or a negated unknown word ("words")."""

    key: str
    value: str
    start: int
    end: int
    match: _Match | None = None  # the matcher's own result, for the title reader's category and gender rules
    negated_at: int | None = None  # character where the negation that excludes this part begins


_Token = tuple[int, int, str]  # character start, end, casefolded accentless word


def parse_query(text: str, brands: Collection[str] = ()) -> Intent:
    """Read a shopper's query with the vocabulary and the catalog's `brands`; never raises on any text."""
    query, truncated = _truncate(text if isinstance(text, str) else "")  # a JSON null from an API body, too
    folded = fold_accents(query)
    tokens = [(m.start(), m.end(), m.group().casefold()) for m in TOKEN.finditer(folded)]
    parts = _negate(folded, tokens, _read(folded, tokens, brands))
    return _intent(query, folded, tokens, parts, truncated)


def _truncate(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_QUERY_CHARS:
        return text, False
    cut = text[:MAX_QUERY_CHARS]
    space = max(cut.rfind(" "), cut.rfind("\t"), cut.rfind("\n"))
    in_word = text[MAX_QUERY_CHARS].isalnum() and cut[-1].isalnum()
    return (cut[:space] if in_word and space > 0 else cut), True


# Reading: the vocabulary's phrases first, then prices, brands, negation and price words, then brand typos.


def _read(text: str, tokens: list[_Token], brands: Collection[str]) -> list[_Part]:
    matches = _merge_compounds(_scan(text, query_words().vocab), text)
    real = [_Part(m.name, m.value, m.start, m.end, m) for m in matches if m.name in ATTRIBUTES]
    prices = _price_parts(text, tokens, _covered(real))
    spelled = _spelled_brands(tokens, brands, real, prices)
    real = [p for p in real if not any(_overlap(p, b) for b in spelled)]  # "Red Tape" is no colour
    taken = _covered([*real, *prices, *spelled])
    pseudo = [_Part(m.name, m.value, m.start, m.end) for m in matches if m.name in PSEUDO]
    pseudo = [p for p in pseudo if not _covered([p]) & taken]  # "no sleeve" is Sleeveless, not a negation
    typos = _typo_brands(tokens, brands, taken | _covered(pseudo))
    return sorted([*real, *prices, *spelled, *pseudo, *typos], key=lambda p: (p.start, -p.end))


def _covered(parts: Iterable[_Part | BrandHit]) -> set[int]:
    return {t for p in parts for t in range(p.start, p.end)}


def _overlap(a: _Part, b: _Part) -> bool:
    return a.start < b.end and b.start < a.end


def _price_parts(text: str, tokens: list[_Token], taken: set[int]) -> list[_Part]:
    parts: list[_Part] = []
    for price in read_prices(text):
        inside = [i for i, (start, end, _) in enumerate(tokens) if start < price.end and price.start < end]
        if not inside or taken & set(inside):
            continue  # a number inside the vocabulary's words ("3/4 sleeve") is no price
        for key, bound in (("price_min", price.low), ("price_max", price.high)):
            if bound is not None:
                parts.append(_Part(key, price_text(bound), inside[0], inside[-1] + 1))
    return parts


def _spelled_brands(
    tokens: list[_Token], brands: Collection[str], real: list[_Part], prices: list[_Part]
) -> list[_Part]:
    """Brands spelled out; one wins over vocabulary words only when it is longer ("Red Tape" over "red";
    a brand list's "Red" or "Indigo" loses to the colour)."""
    if not brands:
        return []
    words = [word for _, _, word in tokens]
    allowed = set(range(len(words))) - _covered(prices)
    found = [_brand_part(hit) for hit in exact_brands(words, brand_index(brands), allowed, query_words().reserved)]
    return [b for b in found if all(p.end - p.start < b.end - b.start for p in real if _overlap(p, b))]


def _typo_brands(tokens: list[_Token], brands: Collection[str], taken: set[int]) -> list[_Part]:
    if not brands:
        return []
    words = [word for _, _, word in tokens]
    reserved = query_words().reserved
    free = {i for i, w in enumerate(words) if i not in taken and w not in reserved and not w.isdigit()}
    return [_brand_part(hit) for hit in fuzzy_brands(words, brand_index(brands), free)]


def _brand_part(hit: BrandHit) -> _Part:
    return _Part("brand", hit.brand, hit.start, hit.end)


# Negation: "not", "no", "without", "non-", "except" or a leading "-" excludes what follows.


def _negate(text: str, tokens: list[_Token], parts: list[_Part]) -> list[_Part]:
    parts = list(parts)
    for negation in [p for p in parts if p.key == NEGATION]:
        _negate_after(text, parts, tokens, negation)
    for i, (start, _, _) in enumerate(tokens):
        if start > 0 and text[start - 1] == "-" and (start == 1 or text[start - 2].isspace()):
            _negate_at(parts, tokens, i, start - 1, shortest=True)  # "dress -black", as web search engines read it
    return sorted(parts, key=lambda p: (p.start, -p.end))


def _negate_after(text: str, parts: list[_Part], tokens: list[_Token], negation: _Part) -> None:
    """Exclude the value, brand or word after a negation, and further values of its attributes joined by
    "or", "and" or a comma ("not black or navy")."""
    at = _skip_stop_words(parts, tokens, negation.end)
    if at >= len(tokens):
        return
    one_word = tokens[negation.start][2] in query_words().prefixes
    keys = _negate_at(parts, tokens, at, tokens[negation.start][0], shortest=one_word)
    while keys:
        end = max(p.end for p in parts if p.start == at and p.key in keys)
        following = _next_in_list(text, tokens, end)
        if following is None:
            return
        keys = _negate_at(parts, tokens, following, tokens[end][0], keys)
        at = following


def _skip_stop_words(parts: list[_Part], tokens: list[_Token], at: int) -> int:
    stop, starts, first = query_words().stop, {p.start for p in parts}, at
    while at < len(tokens) and at - first < MAX_NEGATION_GAP and at not in starts and tokens[at][2] in stop:
        at += 1
    return at


def _next_in_list(text: str, tokens: list[_Token], end: int) -> int | None:
    """The token that continues a list after token `end` - 1: past "or" / "and", or after a comma."""
    if end >= len(tokens):
        return None
    if tokens[end][2] in query_words().joiners:
        return end + 1 if end + 1 < len(tokens) else None
    return end if _LIST_GAP.search(text, tokens[end - 1][1], tokens[end][0]) else None


def _negate_at(
    parts: list[_Part], tokens: list[_Token], at: int, begin: int, keys: set[str] | None = None, shortest: bool = False
) -> set[str]:
    """Mark the parts that start at token `at` (of `keys` when given; only the shortest for a one-word
    negation) as excluded from character `begin`; an unknown word there is excluded as a word. Returns the
    keys excluded, for a list that follows."""
    hits = [i for i, p in enumerate(parts) if p.start == at and p.key in _NEGATABLE and p.negated_at is None]
    hits = [i for i in hits if keys is None or parts[i].key in keys]
    if shortest and hits:
        size = min(parts[i].end - parts[i].start for i in hits)
        hits = [i for i in hits if parts[i].end - parts[i].start == size]
    for i in hits:
        parts[i] = replace(parts[i], negated_at=begin)
    if not hits and keys is None and _unknown(parts, tokens, at):
        parts.append(_Part("words", tokens[at][2], at, at + 1, negated_at=begin))
    return {parts[i].key for i in hits}


def _unknown(parts: list[_Part], tokens: list[_Token], at: int) -> bool:
    word = tokens[at][2]
    return at not in _covered(parts) and word not in query_words().reserved and not word.isdigit()


# The Intent: one value per field, the spans that produced each, and the words left for keyword search.


def _intent(query: str, text: str, tokens: list[_Token], parts: list[_Part], truncated: bool) -> Intent:
    chosen = _choose([p for p in parts if p.negated_at is None and p.key != NEGATION], text)
    negated = [p for p in parts if p.negated_at is not None]
    fields: dict[str, Any] = {}
    for part in chosen:
        fields.setdefault(part.key, float(part.value) if part.key in _PRICES else part.value)
    excluded = _excluded(negated)
    near = tuple(c for c in shades(fields.get("colour", "")) if c not in excluded.get("colour", ()))
    used = _covered([*chosen, *negated, *(p for p in parts if p.key in PSEUDO)])
    spans = [_span(query, tokens, p) for p in [*chosen, *negated]]
    return Intent(
        text=query,
        colour_near=near,
        excluded=excluded,
        rest=_rest(query, tokens, used),
        spans=tuple(sorted(spans, key=lambda s: (s.start, s.end, s.key))),
        truncated=truncated,
        **fields,
    )


def _choose(parts: list[_Part], text: str) -> list[_Part]:
    """The parts that give each field its value: the first named, the category's head noun, one gender."""
    groups: dict[str, list[_Part]] = {}
    for part in parts:
        groups.setdefault(part.key, []).append(part)
    return [part for key, group in groups.items() for part in _pick(key, group, text)]


def _pick(key: str, group: list[_Part], text: str) -> list[_Part]:
    matches = [p.match for p in group if p.match is not None]
    if key == "category":  # the product noun: "shoe bag" is a bag, "dress with belt" a dress
        head = _head(_before_connector(matches, text), vocabulary().attributes["category"], text)
        return [p for p in group if p.match is head]
    if key == "gender":  # "men and women" is Unisex; every gender word took part in saying so
        value, _ = _gender(matches)
        return [replace(p, value=value) for p in group]
    return group[:1]


def _excluded(negated: list[_Part]) -> dict[str, list[str]]:
    excluded: dict[str, list[str]] = {}
    for part in negated:
        values = excluded.setdefault(part.key, [])
        if part.value not in values:
            values.append(part.value)
    return excluded


def _span(query: str, tokens: list[_Token], part: _Part) -> Span:
    start, end = tokens[part.start][0], tokens[part.end - 1][1]
    if part.negated_at is not None:
        start, key = part.negated_at, f"excluded.{part.key}"
    else:
        key = part.key
    return Span(key, part.value, query[start:end], start, end)


def _rest(query: str, tokens: list[_Token], used: set[int]) -> str:
    stop = query_words().stop
    return " ".join(query[s:e] for i, (s, e, word) in enumerate(tokens) if i not in used and word not in stop)
