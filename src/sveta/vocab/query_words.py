"""Shoppers' query words beyond the attributes (data/query_words.yaml): stop words, negations, price words."""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from sveta.vocab.attributes import Vocabulary, phrase_key, vocabulary

# Pseudo-attributes the query vocabulary adds beside the real ones: they are read by the same matcher but are
# not product attributes, so they never outrank a real attribute's words ("no sleeve" is Sleeveless).
PRICE_BAND = "price_band"
NEGATION = "negation"
PSEUDO = frozenset({PRICE_BAND, NEGATION})


@dataclass(frozen=True, slots=True)
class QueryWords:
    """query_words.yaml, loaded: word sets, the query vocabulary, and the price words for the price patterns."""

    stop: frozenset[str]
    joiners: frozenset[str]
    prefixes: frozenset[str]  # negations bound to one word, like a leading "-": "non-leather jacket"
    vocab: Vocabulary  # attributes.yaml's phrases plus the query-only ones
    price: dict[str, list[str]]
    units: frozenset[str]
    reserved: frozenset[str]  # every single word with a query meaning: never a one-word brand


@functools.lru_cache(maxsize=1)
def query_words() -> QueryWords:
    """The query words from sveta/vocab/data/query_words.yaml, loaded once."""
    data = yaml.safe_load(resources.files("sveta.vocab").joinpath("data/query_words.yaml").read_text("utf-8"))
    vocab = _query_vocabulary(vocabulary(), data["phrases"])
    price = {kind: sorted(_words(words)) for kind, words in data["price"].items()}
    stop, joiners, prefixes = (_words(data[k]) for k in ("stop_words", "negation_joiners", "negation_prefixes"))
    single = {k for k, entries in vocab.phrases.items() if any(name in PSEUDO for name, _ in entries)}
    priced = {phrase_key(w) for kind in ("max_before", "min_before", "range_before") for w in price[kind]}
    reserved = stop | joiners | single | priced | _words(price["currency_words"])
    units = frozenset(price["units"])
    return QueryWords(stop, joiners, prefixes, vocab, price, units, frozenset(reserved))


def _words(words: list[Any]) -> frozenset[str]:
    """Casefolded words; YAML reads a bare no, on or off as a boolean, which is a data error here."""
    bad = [w for w in words if not isinstance(w, str)]
    if bad:
        raise ValueError(f"query_words.yaml: {bad!r} are not words: quote them")
    return frozenset(w.casefold() for w in words)


def _query_vocabulary(base: Vocabulary, extra: dict[str, dict[str, list[str]]]) -> Vocabulary:
    """attributes.yaml's phrase index plus the query phrases; a query phrase may not rename a vocabulary one."""
    phrases = {key: list(entries) for key, entries in base.phrases.items()}
    for name, values in extra.items():
        for value, words in values.items():
            for word in _words(words):
                _add(phrases.setdefault(phrase_key(word), []), name, str(value))
    prefixes = {key[:n] for key in phrases for n in range(1, len(key) + 1)}
    frozen = {key: tuple(entries) for key, entries in phrases.items()}
    return Vocabulary(base.attributes, frozen, frozenset(prefixes), base.version + "+query")


def _add(entries: list[tuple[str, str | None]], name: str, value: str) -> None:
    known = dict(entries).get(name, value)
    if known != value:
        raise ValueError(f"query_words.yaml: a {name} phrase maps to {known!r} and {value!r}")
    if (name, value) not in entries:
        entries.append((name, value))


def fold_accents(text: str) -> str:
    """The text without accents, character for character ("Lévis" -> "Levis"), so offsets stay the same."""
    return text if text.isascii() else "".join(map(_fold_char, text))


@functools.lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    if char.isascii():
        return char
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if len(base) == 1 else char  # "ß" or "ﬁ" would change the length: kept as they are
