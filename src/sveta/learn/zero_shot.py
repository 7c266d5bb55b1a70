"""Zero-shot tagging with a CLIP embedder: each attribute's vocabulary values as text prompts, no training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sveta.errors import ConfigError
from sveta.learn.heads import UNKNOWN, Prediction

# A prompt per attribute, as CLIP was trained on captions ("a photo of ..."), not on bare words.
TEMPLATES = {
    "category": "a product photo of a {}",
    "colour": "a product photo of a {} coloured item",
    "gender": "a product photo of a fashion item for {}",
    "occasion": "a product photo of {} wear",
    "pattern": "a product photo of a {} garment",
}
LOGIT_SCALE = 100.0  # CLIP's own learned scale: cosines 0.01 apart become a clear preference


def vocabulary_labels(attributes: Sequence[str] = tuple(TEMPLATES)) -> dict[str, list[str]]:
    """Each attribute's canonical values from the package vocabulary (attributes.yaml)."""
    from sveta.vocab.attributes import vocabulary

    vocab = vocabulary().attributes
    return {a: list(vocab[a].values) for a in attributes if a in vocab}


class ZeroShotTagger:
    """Scores photos against prompt embeddings of every label; the same answers as a trained model gives."""

    def __init__(self, embedder: Any, labels: Mapping[str, Sequence[str]] | None = None) -> None:
        if not hasattr(embedder, "embed_texts"):
            raise ConfigError(
                f"{embedder.spec} cannot embed text, so it cannot tag zero-shot",
                "use a CLIP embedder (SVETA_EMBEDDER=hf-hub:Marqo/marqo-fashionSigLIP), or train: sveta train",
            )
        self.embedder = embedder
        self.labels = {a: list(v) for a, v in (labels or vocabulary_labels()).items() if a in TEMPLATES and v}
        self.prompts = {
            a: embedder.embed_texts([TEMPLATES[a].format(v.lower()) for v in values])
            for a, values in self.labels.items()
        }

    def probabilities(self, image_vectors: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for attribute, prompts in self.prompts.items():
            logits = LOGIT_SCALE * image_vectors @ prompts.T
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            out[attribute] = p / p.sum(axis=1, keepdims=True)
        return out

    def predict(self, image_vectors: np.ndarray, threshold: float, top: int = 3) -> list[dict[str, Prediction]]:
        rows: list[dict[str, Prediction]] = [{} for _ in range(len(image_vectors))]
        for attribute, p in self.probabilities(image_vectors).items():
            for row, probs in enumerate(p):
                order = np.argsort(-probs)[:top]
                alternatives = [(self.labels[attribute][i], round(float(probs[i]), 4)) for i in order]
                best, confidence = alternatives[0]
                value = best if confidence >= threshold else UNKNOWN
                rows[row][attribute] = Prediction(value, confidence, alternatives)
        return rows


def _prompts(attribute: str, values: Sequence[str]) -> list[str]:
    return [TEMPLATES[attribute].format(value.lower()) for value in values]
