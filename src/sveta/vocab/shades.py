"""Close shades of a named colour: named as its shade in the vocabulary, or tone on tone and near in CIE Lab."""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import yaml

from sveta.vocab.attributes import vocabulary
from sveta.vocab.colour_harmony import SAME, colour_columns, named_colours, pairing

# CIE76 distance up to which two tones of one hue are still one colour to a shopper: it keeps Maroon with Red
# (39) and Navy Blue with Blue (33), and leaves Orange (36 from Red) out through its hue, not its distance.
MAX_SHADE_DISTANCE = 40.0
MAX_SHADES = 3  # the nearest few: a query for "grey" should not boost half the palette


def shades(colour: str) -> tuple[str, ...]:
    """The canonical colours closest to `colour` (canonical), nearest first; () for unknown ones and "Multi"."""
    return _shade_table().get(colour, ())


@functools.lru_cache(maxsize=1)
def _shade_table() -> dict[str, tuple[str, ...]]:
    colours = vocabulary().attributes["colour"].values
    pairs = _named_pairs(colours) | _tone_pairs()
    table: dict[str, tuple[str, ...]] = {}
    for colour in colours:
        near = {b for a, b in pairs if a == colour} | {a for a, b in pairs if b == colour}
        table[colour] = tuple(sorted(near, key=lambda other: (_distance(colour, other), other))[:MAX_SHADES])
    return table


def _named_pairs(colours: tuple[str, ...]) -> set[tuple[str, str]]:
    """(shade, colour) where a name of the shade ends in the colour's name: "Navy Blue", "dark red" (Maroon),
    "neon pink" (Magenta); the last word names the colour, as in the title reader's compounds."""
    spec = yaml.safe_load(resources.files("sveta.vocab").joinpath("data/attributes.yaml").read_bytes())
    heads = {c: c.casefold().split() for c in colours}
    pairs: set[tuple[str, str]] = set()
    for shade, synonyms in spec["colour"]["values"].items():
        for name in [shade, *(synonyms or [])]:
            words = str(name).casefold().replace("-", " ").split()
            pairs |= {(shade, c) for c, head in heads.items() if len(words) > len(head) and words[-len(head) :] == head}
    return {(a, b) for a, b in pairs if a != b}


def _tone_pairs() -> set[tuple[str, str]]:
    """Palette colours in one hue band (colour harmony's tone on tone) or both neutral, near enough in Lab."""
    names = list(named_colours())
    hue, neutral, known = colour_columns(names, ())
    pairs: set[tuple[str, str]] = set()
    for i, name in enumerate(names):
        kinds = pairing(float(hue[i]), bool(neutral[i]), True, hue, neutral, known)
        alike = (neutral & neutral[i]) | ((kinds == SAME) & ~neutral & ~neutral[i])
        near = [names[j] for j in np.flatnonzero(alike) if j != i]
        pairs |= {(name, other) for other in near if _distance(name, other) <= MAX_SHADE_DISTANCE}
    return pairs


def _distance(a: str, b: str) -> float:
    """CIE76 distance; a colour without a palette entry (Rose, Lime Green) counts as at the edge of close."""
    lab = named_colours()
    if a not in lab or b not in lab:
        return MAX_SHADE_DISTANCE
    return math.dist(lab[a], lab[b])
