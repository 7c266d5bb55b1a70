"""The trained attribute model in numpy: calibrated attribute heads and the tuned embedding, saved as one npz."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta.atomic import copy_file, write_npz
from sveta.embed.base import l2_normalise
from sveta.errors import ConfigError
from sveta.learn.features import BLOCKS, Backbone, Features

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sveta.learn.text_map import TextMap
    from sveta.settings import Settings

UNKNOWN = "unknown"
FORMAT = 1
# The tuned vector: the metric-learned embedding, the category and colour heads' beliefs (square roots of
# probabilities: their dot product is the Bhattacharyya overlap), and the text map's image side (so a text query
# can rank photos of an image-only index). Belief weights of 0.6 add ~0.01 to both precision@10 figures over the
# embedding alone with colour at 0.5, on thumbnails and sharp photos alike.
PART_WEIGHTS = {"embedding": 1.0, "category": 0.6, "colour": 0.6, "text": 0.3}
BELIEFS = ("category", "colour")


@dataclass(slots=True)
class Prediction:
    value: str  # UNKNOWN when the best class is below the threshold
    confidence: float
    alternatives: list[tuple[str, float]]  # the top classes, best first (the first is the raw best)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": round(self.confidence, 4), "alternatives": self.alternatives}


@dataclass
class AttributeModel:
    """One hidden layer over standardised features; one softmax head per attribute and a metric embedding."""

    weights: dict[str, np.ndarray]  # mu, sd, fc_w, fc_b, emb_w, emb_b, head/<attr>/w, head/<attr>/b
    classes: dict[str, list[str]]
    temperatures: dict[str, float]
    card: dict[str, Any] = field(default_factory=dict)
    text_map: TextMap | None = None
    backbone: Backbone | None = None  # the fine-tuned CNN the features come from (None: the frozen one)

    @property
    def attributes(self) -> list[str]:
        return list(self.classes)

    @property
    def dim(self) -> int:
        text = self.text_map.dim if self.text_map is not None else 0
        return self.weights["emb_w"].shape[0] + sum(len(self.classes.get(b, [])) for b in BELIEFS) + text

    def hidden(self, features: Features) -> np.ndarray:
        x = (features.matrix(self.card.get("blocks", list(BLOCKS))) - self.weights["mu"]) / self.weights["sd"]
        return np.maximum(x @ self.weights["fc_w"].T + self.weights["fc_b"], 0)

    def probabilities(
        self, features: Features, hidden: np.ndarray | None = None, only: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Each attribute's class probabilities (``only`` those attributes when given)."""
        z = self.hidden(features) if hidden is None else hidden
        return {
            a: _softmax((z @ self.weights[f"head/{a}/w"].T + self.weights[f"head/{a}/b"]) / t)
            for a, t in self.temperatures.items()
            if only is None or a in only
        }

    def predict(self, features: Features, threshold: float, top: int = 3) -> list[dict[str, Prediction]]:
        """Per row, each attribute's answer; UNKNOWN below ``threshold`` (the probabilities are calibrated)."""
        probs = self.probabilities(features)
        rows: list[dict[str, Prediction]] = [{} for _ in range(len(features.pooled))]
        for attribute, p in probs.items():
            order = np.argsort(-p, axis=1)[:, :top]
            names = self.classes[attribute]
            for row, (ranks, pr) in enumerate(zip(order, p, strict=True)):
                alternatives = [(names[i], round(float(pr[i]), 4)) for i in ranks]
                best, confidence = alternatives[0]
                rows[row][attribute] = Prediction(
                    best if confidence >= threshold else UNKNOWN, confidence, alternatives
                )
        return [_applicable(row) for row in rows]

    def embed(self, features: Features) -> np.ndarray:
        """The tuned search vector (unit rows): embedding, category and colour beliefs, the text map's image side."""
        z = self.hidden(features)
        parts = [PART_WEIGHTS["embedding"] * l2_normalise(z @ self.weights["emb_w"].T + self.weights["emb_b"])]
        probs = self.probabilities(features, z, BELIEFS)  # the other heads are not part of the vector
        parts += [PART_WEIGHTS[b] * np.sqrt(probs[b]) for b in BELIEFS if b in probs]
        if self.text_map is not None:
            parts.append(PART_WEIGHTS["text"] * self.text_map.embed_images(features))
        return l2_normalise(np.hstack(parts)).astype(np.float32)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Text queries in the tuned space: zeros but for the text map's block, so only it ranks."""
        if self.text_map is None:
            raise ConfigError("this model has no text map", "train with the text extra: pip install 'sveta[text]'")
        queries = self.text_map.embed_queries(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        out[:, self.dim - queries.shape[1] :] = queries
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"w/{k}": v for k, v in self.weights.items()}
        if self.text_map is not None:
            arrays |= {f"text/{k}": v for k, v in self.text_map.to_arrays().items()}
        meta = {"format": FORMAT, "classes": self.classes, "temperatures": self.temperatures, "card": self.card}
        if self.backbone is not None and self.backbone.path.parent.resolve() != folder.resolve():
            copy_file(self.backbone.path, folder / self.backbone.path.name)
        write_npz(folder / "model.npz", {"meta": np.array(json.dumps(meta)), **arrays})
        keep = self.backbone.path.name if self.backbone is not None else None
        for old in folder.glob("backbone-*.onnx"):  # networks of earlier trainings of this name
            if old.name != keep:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, settings: Settings) -> AttributeModel:
        path = folder / "model.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                weights = {k[2:]: data[k] for k in data.files if k.startswith("w/")}
                text = {k[5:]: data[k] for k in data.files if k.startswith("text/")}
        except FileNotFoundError:
            raise ConfigError(f"no trained model at {folder}", "train one: sveta train") from None
        except Exception as exc:  # a damaged npz makes zipfile / numpy / json raise many types
            raise ConfigError(f"the model at {path} is damaged: {exc}", "train it again: sveta train") from exc
        text_map = None
        if text:
            from sveta.learn.text_map import TextMap

            text_map = TextMap.from_arrays(text, settings)
        from sveta.learn.backbone import backbone_of

        backbone = backbone_of(meta["card"], folder)
        return cls(weights, meta["classes"], meta["temperatures"], meta["card"], text_map, backbone)


def _applicable(row: dict[str, Prediction]) -> dict[str, Prediction]:
    """Drop a weak attribute (sleeve length...) from a photo whose category does not take it (a handbag)."""
    from sveta.learn.labels import WEAK_ATTRIBUTES
    from sveta.learn.weak_labels import applicable

    if not any(a in row for a in WEAK_ATTRIBUTES):
        return row
    category = row["category"].alternatives[0][0] if "category" in row else ""
    takes = applicable(category)
    return {a: p for a, p in row.items() if a not in WEAK_ATTRIBUTES or a in takes}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
