"""'+' embedders: several embedders' vectors concatenated, each weighted, into one cosine space.

With parts ``u_i`` (unit vectors) and weights ``w_i`` (``settings.embed_weights[part.spec]``, default 1.0),
the composed vector is ``v = concat(sqrt(w_i) * u_i) / sqrt(W)`` with ``W = sum(w_i)``. Its norm is 1, and
for two photos ``cos(v, v') = sum(w_i * cos(u_i, u'_i)) / W``: the weighted mean of the parts' cosines.
(A part that returns an all-zero row, e.g. for a blank photo, breaks the "unit" premise; the final
L2-normalisation then gives the remaining parts proportionally more weight for that photo.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.embed.base import ImageEmbedder, l2_normalise
from sveta.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from sveta.settings import Settings


class ComposedEmbedder:
    """Concatenation of ``parts``: spec ``a+b``, dim ``a.dim + b.dim``, prepared items are tuples."""

    def __init__(self, parts: Sequence[ImageEmbedder], settings: Settings) -> None:
        if not parts:
            raise ConfigError("an empty '+' embedder", "name at least one embedder, e.g. effnet-lite0+colour")
        self.parts = list(parts)
        self.spec = "+".join(part.spec for part in self.parts)
        # what makes the vectors (cache key): each part's own version, then the weights
        versions = "+".join(str(getattr(part, "identity", part.spec)) for part in self.parts)
        self.dim = sum(part.dim for part in self.parts)
        self.weights = _weights(self.parts, settings.embed_weights)
        total = sum(self.weights)
        self.scales = [math.sqrt(w / total) for w in self.weights]
        self.identity = versions + "@" + ",".join(f"{w:g}" for w in self.weights)

    def prepare(self, image: Image.Image) -> tuple[Any, ...]:
        return tuple(part.prepare(image) for part in self.parts)

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        blocks = [
            scale * part.embed_prepared([item[index] for item in items])
            for index, (part, scale) in enumerate(zip(self.parts, self.scales, strict=True))
        ]
        return l2_normalise(np.concatenate(blocks, axis=1))


def spec_identity(spec: str, configured: dict[str, float]) -> str:
    """What makes a spec's vectors: the spec, plus the weights when it composes parts (new weights, new vectors)."""
    parts = spec.split("+")
    if len(parts) == 1:
        return spec
    return spec + "@" + ",".join(f"{float(configured.get(part, 1.0)):g}" for part in parts)


def _weights(parts: Sequence[ImageEmbedder], configured: dict[str, float]) -> list[float]:
    weights = [float(configured.get(part.spec, 1.0)) for part in parts]
    bad = [f"{part.spec}={w}" for part, w in zip(parts, weights, strict=True) if not (w >= 0 and math.isfinite(w))]
    if bad or sum(weights) <= 0:
        raise ConfigError(
            f"bad embedder weights: {', '.join(bad) or 'they add up to 0'}",
            "set SVETA_EMBED_WEIGHTS to non-negative numbers with at least one above 0, e.g. '{\"colour\": 0.6}'",
        )
    return weights
