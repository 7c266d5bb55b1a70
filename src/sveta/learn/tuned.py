"""The `tuned:NAME` embedder: the catalog-trained projection of the learning features (see ``sveta train``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.embed.blas import blas_for

if TYPE_CHECKING:
    from PIL import Image

    from sveta.settings import Settings


def make_tuned(spec: str, settings: Settings) -> TunedEmbedder:
    from sveta.learn.store import DEFAULT_NAME

    return TunedEmbedder(spec.partition(":")[2] or DEFAULT_NAME, settings)


def make_tuned_int8(spec: str, settings: Settings) -> TunedEmbedder:
    """``tuned-int8:NAME``: the same model over its network's INT8 copy (``sveta.embed.quantize``)."""
    from sveta.learn.store import DEFAULT_NAME

    return TunedEmbedder(spec.partition(":")[2] or DEFAULT_NAME, settings, int8=True)


class TunedEmbedder:
    """Features (cached per photo) -> the trained model's search vector; it also embeds text when it has a text map.

    ``base`` and ``project`` let ``embed_cached`` reuse cached features: retraining re-projects, never re-reads photos.
    ``identity`` (spec and model version) names its vectors in the embedding cache and in the index it builds.
    """

    def __init__(self, name: str, settings: Settings, *, int8: bool = False) -> None:
        """``int8``: features from the quantised network; the heads, trained on FP32 features, stay as they are."""
        from sveta.learn.features import FeatureExtractor
        from sveta.learn.store import load_model

        self.model = load_model(settings, name)
        int8 = int8 and "int8" not in (self.model.card.get("backbone") or {})  # trained on INT8: quantised already
        self.base = FeatureExtractor(settings, backbone=self.model.backbone, int8=int8)
        self.spec = f"tuned{'-int8' if int8 else ''}:{name}"
        self.dim = self.model.dim
        self.identity = f"{self.spec}@{self.model.card.get('model_id', '')}"
        if int8:  # the quantised network depends on its calibration photos: its checksum names the vectors too
            self.identity += f"@{self.base.cnn.identity.partition('@')[2]}"

    def prepare(self, image: Image.Image) -> Any:
        return self.base.prepare(image)

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        return self.project(self.base.embed_prepared(items))

    def project(self, features: np.ndarray) -> np.ndarray:
        from sveta.learn.features import Features

        if not len(features):
            return np.zeros((0, self.dim), np.float32)
        with blas_for(len(features)):
            return self.model.embed(Features.from_matrix(features))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        with blas_for(len(texts)):
            return self.model.embed_text(list(texts))
