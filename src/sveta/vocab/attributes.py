"""The vocabulary: attributes, their canonical values, synonyms and groups, loaded from data/attributes.yaml."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class AttributeVocab:
    """One attribute's canonical values; `groups` and `generic` are only filled for category."""

    name: str
    multi: bool
    values: tuple[str, ...]
    groups: dict[str, str]
    generic: frozenset[str]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The loaded attributes.yaml: attributes plus the phrase index the matcher walks."""

    attributes: dict[str, AttributeVocab]
    phrases: dict[str, tuple[tuple[str, str | None], ...]]  # joined words -> (attribute, value or None)
    prefixes: frozenset[str]  # every prefix of a phrase key, to stop extending a phrase early
    version: str


def phrase_key(phrase: str) -> str:
    """A phrase as the vocabulary's index key: casefolded words joined."""
    return "".join(TOKEN.findall(phrase.casefold()))


@functools.lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The vocabulary from sveta/vocab/data/attributes.yaml, loaded once."""
    raw = resources.files("sveta.vocab").joinpath("data/attributes.yaml").read_bytes()
    data = yaml.safe_load(raw)
    attributes: dict[str, AttributeVocab] = {}
    phrases: dict[str, list[tuple[str, str | None]]] = {}
    for name, spec in data.items():
        attributes[name] = _attribute(name, spec)
        for key, value in _phrase_keys(name, spec).items():
            phrases.setdefault(key, []).append((name, value))
    prefixes = {key[:n] for key in phrases for n in range(1, len(key) + 1)}
    version = "vocab-" + hashlib.sha256(raw).hexdigest()[:12]
    frozen = {key: tuple(entries) for key, entries in phrases.items()}
    return Vocabulary(attributes, frozen, frozenset(prefixes), version)


def _attribute(name: str, spec: dict[str, Any]) -> AttributeVocab:
    groups: dict[str, str] = {}
    generic: set[str] = set()
    for value, body in spec["values"].items():
        if isinstance(body, dict):
            if "group" in body:
                groups[value] = body["group"]
            if body.get("generic"):
                generic.add(value)
    return AttributeVocab(name, bool(spec.get("multi")), tuple(spec["values"]), groups, frozenset(generic))


def _phrase_keys(name: str, spec: dict[str, Any]) -> dict[str, str | None]:
    """Phrase key -> canonical value (None: ignored phrase); one key with two values is a data error."""
    explicit: dict[str, str | None] = {}
    for value, body in spec["values"].items():
        synonyms = body.get("synonyms", []) if isinstance(body, dict) else body or []
        for phrase in [value, *synonyms]:
            _add(explicit, phrase_key(phrase), value, name)
    for phrase in spec.get("ignore", []):
        _add(explicit, phrase_key(phrase), None, name)
    keys = dict(explicit)
    if spec.get("plurals"):
        for key, value in explicit.items():
            for plural in (key + "s", key + "es"):
                keys.setdefault(plural, value)  # an explicit phrase always beats a generated plural
    return keys


def _add(keys: dict[str, str | None], key: str, value: str | None, name: str) -> None:
    if key in keys and keys[key] != value:
        raise ValueError(f"attributes.yaml: {name} phrase {key!r} maps to {keys[key]!r} and {value!r}")
    keys[key] = value
