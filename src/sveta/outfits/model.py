"""The type-aware compatibility model in numpy: a general embedding, and per slot-pair masks (Vasileva et al. 2018).

Two items are compatible when they are close in the subspace of their pair of types: a shirt and trousers are
compared on what matters between tops and bottoms, which need not be what matters between tops and shoes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sveta.atomic import write_npz
from sveta.errors import ConfigError
from sveta.learn.features import VERSION, Features

INPUT_BLOCKS = ("pooled", "colour")  # what the model sees of a photo: CNN features and the colour histogram
DEFAULT_NAME = "compat"


@dataclass
class CompatModel:
    """``weights``: mu / sd (input scaling), w1 / b1 / w2 / b2 (the general embedding), masks (pair x dim)."""

    types: list[str]
    weights: dict[str, np.ndarray]
    typed: bool = True
    card: dict[str, Any] = field(default_factory=dict)

    def embed(self, features: Features) -> np.ndarray:
        """Unit-length general embeddings of photos' features."""
        w = self.weights
        x = (features.matrix(INPUT_BLOCKS) - w["mu"]) / w["sd"]
        z = np.maximum(x @ w["w1"].T + w["b1"], 0) @ w["w2"].T + w["b2"]
        return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)).astype(np.float32)

    def pair(self, u: str, v: str) -> int:
        """The mask of a pair of types (unordered); an untyped model has one mask for every pair."""
        if not self.typed:
            return 0
        i, j = sorted((self.type_index(u), self.type_index(v)))
        n = len(self.types)
        return i * n - i * (i - 1) // 2 + (j - i)

    def type_index(self, t: str) -> int:
        try:
            return self.types.index(t)
        except ValueError:
            raise ConfigError(
                f"the outfit model knows no type {t!r} (it knows {', '.join(self.types)})",
                "train it on outfits that have this slot: sveta outfits train PATH",
            ) from None

    def knows(self, t: str | None) -> bool:
        return t in self.types

    def distance(self, x: np.ndarray, u: str, ys: np.ndarray, v: str) -> np.ndarray:
        """Distance of one embedding of type u to many of type v, in the (u, v) subspace."""
        mask = np.maximum(self.weights["masks"][self.pair(u, v)], 0)
        return np.linalg.norm((ys - x) * mask, axis=-1)

    def outfit_score(self, vectors: np.ndarray, types: list[str]) -> float:
        """Compatibility of a whole outfit: minus the mean distance over its pairs (higher goes better)."""
        pairs = [(i, j) for i in range(len(types)) for j in range(i + 1, len(types))]
        if not pairs:
            return 0.0
        return -float(np.mean([self.distance(vectors[i], types[i], vectors[j], types[j]) for i, j in pairs]))

    @property
    def model_id(self) -> str:
        digest = hashlib.sha256()
        for key in sorted(self.weights):
            digest.update(key.encode() + self.weights[key].tobytes())
        return digest.hexdigest()[:12]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_npz(folder / "weights.npz", self.weights)
        card = self.card | {"types": self.types, "typed": self.typed, "input": f"{VERSION}:{'+'.join(INPUT_BLOCKS)}"}
        (folder / "card.json").write_text(json.dumps(card | {"model_id": self.model_id}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> CompatModel:
        try:
            card = json.loads((folder / "card.json").read_text())
            with np.load(folder / "weights.npz") as data:
                weights = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"the outfit model in {folder} cannot be read ({exc})", "train it again: sveta outfits train PATH"
            ) from None
        if card.get("input") != f"{VERSION}:{'+'.join(INPUT_BLOCKS)}":
            raise ConfigError(f"the outfit model in {folder} was made for other features", "sveta outfits train PATH")
        return cls(card["types"], weights, bool(card.get("typed", True)), card)


def model_dir(data_dir: Path, name: str = DEFAULT_NAME) -> Path:
    return data_dir / "models" / "outfits" / name


def load_outfit_model(data_dir: Path, name: str = DEFAULT_NAME) -> CompatModel | None:
    """The trained outfit model of a data home, or None when none was trained."""
    folder = model_dir(data_dir, name)
    return CompatModel.load(folder) if (folder / "card.json").is_file() else None
