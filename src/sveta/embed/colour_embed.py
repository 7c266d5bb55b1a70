"""The `colour` image embedder: the garment's colour histogram as a vector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.embed.base import l2_normalise
from sveta.images.colour import HIST_DIM, colour_histogram

if TYPE_CHECKING:
    from PIL import Image

    from sveta.settings import Settings


class ColourEmbedder:
    spec = "colour"
    identity = "colour-v2"  # v2: 56 px box-reduced analysis; cached v1 vectors are not mixed in
    dim = HIST_DIM

    def prepare(self, image: Image.Image) -> Any:
        return colour_histogram(image)

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        return l2_normalise(np.stack(list(items)).astype(np.float32))


def make_colour(spec: str, settings: Settings) -> ColourEmbedder:
    return ColourEmbedder()
