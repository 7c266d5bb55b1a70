"""Colour harmony for complete-the-look: named colours as hue and chroma, and how well two colours pair."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from sveta.vocab.colours import palette

# Kinds of pairing, in the order of KIND_WORDS; the score of each kind is in KIND_SCORES.
UNKNOWN, NEUTRAL, SAME, ANALOGOUS, COMPLEMENTARY, TRIADIC, CLASH = range(7)
KIND_SCORES = np.array([0.5, 0.9, 0.8, 0.85, 0.8, 0.55, 0.2], np.float32)
KIND_WORDS = ("", "a neutral", "tone on tone", "analogous hues", "complementary hues", "triadic hues", "clashing")
NEUTRAL_CHROMA = 12.0  # a colour with less Lab chroma than this reads as grey, whatever its name


@functools.lru_cache(maxsize=1)
def named_colours() -> dict[str, tuple[float, float, float]]:
    """Myntra's colour names -> Lab (D65), from the palette the colour descriptor names colours with."""
    names, lab, _ = palette()
    return {n: (float(a), float(b), float(c)) for n, (a, b, c) in zip(names, lab, strict=True)}


def hue_chroma(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue in degrees [0, 360) and chroma of Lab rows."""
    lab = np.asarray(lab, np.float32).reshape(-1, 3)
    return np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360, np.hypot(lab[:, 1], lab[:, 2])


def colour_columns(names: Iterable[str | None], neutrals: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hue, neutral, known) per colour name; "Multi" and unknown names are not known colours."""
    table = named_colours()
    neutral_names = {n.casefold() for n in neutrals}
    folded = {k.casefold(): v for k, v in table.items()}
    labs, neutral, known = [], [], []
    for name in names:
        key = (name or "").strip().casefold()
        lab = folded.get(key)
        known.append(lab is not None)
        labs.append(lab or (50.0, 0.0, 0.0))
        neutral.append(key in neutral_names)
    hue, chroma = hue_chroma(np.array(labs, np.float32))
    return hue.astype(np.float32), np.array(neutral, bool) | (chroma < NEUTRAL_CHROMA), np.array(known, bool)


def pairing(
    hue: float, neutral: bool, known: bool, hues: np.ndarray, neutrals: np.ndarray, knowns: np.ndarray
) -> np.ndarray:
    """The kind of pairing (UNKNOWN ... CLASH) of one colour with each of many, vectorised."""
    delta = np.abs(hues - hue) % 360
    delta = np.minimum(delta, 360 - delta)
    kind = np.select(
        [delta < 15, delta < 45, delta >= 150, (delta >= 100) & (delta < 140)],
        [SAME, ANALOGOUS, COMPLEMENTARY, TRIADIC],
        CLASH,
    ).astype(np.int8)
    kind[neutrals | neutral] = NEUTRAL
    kind[~knowns | (not known)] = UNKNOWN
    return kind


def pattern_factor(loud: bool, louds: np.ndarray) -> np.ndarray:
    """An outfit carries at most one loud pattern: two loud pieces keep 60% of their score."""
    return np.where(louds & loud, 0.6, 1.0).astype(np.float32)
