"""What complete the look reads from a photo piece: its colour, and its nearest products' gender, occasion, season."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sveta.outfits.arrays import CatalogArrays, outfit_rules
from sveta.vocab import colour_harmony as ch

if TYPE_CHECKING:
    from sveta.engines.search import Searcher

ATTRIBUTE_VOTERS = 20  # nearest products whose gender / occasion / season a photo piece takes by majority


def photo_colour(path: Path, model_colour: str | None) -> tuple[str | None, float, bool, bool, str]:
    """(name, hue, neutral, multi, origin): the trained model's colour when it is sure (the descriptor reads a
    model's skin and hair into a garment's colour), else the colour descriptor's."""
    from PIL import Image

    from sveta.images.colour import describe

    neutrals = outfit_rules().neutral_colours
    if model_colour:
        from sveta.vocab.reading import canonical

        name = canonical("colour", model_colour)
        hue, neutral, known = ch.colour_columns([name], neutrals)
        if known[0]:
            return name, float(hue[0]), bool(neutral[0]), False, "model"
        if name == "Multi":
            return name, 0.0, False, True, "model"
    with Image.open(path) as image:
        info = describe(image.convert("RGB"))
    hues, chroma = ch.hue_chroma(np.array(info.lab, np.float32))
    grey = info.name in neutrals or float(chroma[0]) < ch.NEUTRAL_CHROMA
    name = info.dominant[0][0] if info.name == "Multi" and info.dominant else info.name
    return name, float(hues[0]), grey, info.name == "Multi", "colour descriptor"


def neighbour_votes(
    a: CatalogArrays, searcher: Searcher, vector: np.ndarray, k: int = ATTRIBUTE_VOTERS
) -> dict[str, str]:
    """The gender / occasion / season most of the photo's nearest catalog products share."""
    hits = searcher.index.search(vector[None, :], k)[0]
    rows = [a.row_of[h.product_id] for h in hits if h.product_id in a.row_of]
    out: dict[str, str] = {}
    for name, codes, column in (
        ("gender", a.genders, a.gender),
        ("occasion", a.occasions, a.occasion),
        ("season", a.seasons, a.season),
    ):
        votes = np.bincount(column[rows], minlength=len(codes.values)) if rows else np.zeros(1, np.int64)
        votes[0] = 0  # unknown does not vote
        if votes.max() > 0:
            out[name] = codes.values[int(np.argmax(votes))]
    return out
