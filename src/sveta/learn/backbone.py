"""The CNN's two halves for fine-tuning: a frozen front's cached outputs, and the fine-tuned whole as one ONNX graph."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.embed.effnet import INPUT, MID, OUTPUT, VARIANTS, export_graph, is_valid, sha256_file
from sveta.errors import ConfigError
from sveta.images.colour import colour_histogram, colour_profile
from sveta.learn.features import AUGMENTATIONS, BASE, Backbone

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from PIL import Image

    from sveta.settings import Settings

CUT_VERSION = "cut-v1"  # bump when the front graph or the row layout changes: cached rows are keyed by it
PREFIX, CUT = "prefix", "cut"
CHECK_TOLERANCE = 2e-3  # largest difference allowed between torch and the exported graph on unit-norm features
_LOCK = threading.Lock()


def front_graph(settings: Settings, stages: int) -> Path:
    """``models_dir/effnet-lite0-u8-cut<stages>.onnx``: pixels -> (earlier mid features, the trained part's input)."""
    path = settings.models_dir / f"{BASE}-u8-cut{stages}.onnx"
    with _LOCK:
        if not is_valid(path):
            _write_checked(path, lambda tmp: _export_front(stages, tmp))
    return path


def _export_front(stages: int, target: Path) -> None:
    require("torch", "train")
    require("onnx", "export")
    from sveta.embed.effnet import load_torch_features
    from sveta.learn.finetune_net import Front, first_trained_block

    model = load_torch_features(BASE)
    start = first_trained_block(model, stages)
    front = Front(model, start, whole=stages == len_stages(model)).eval()
    export_graph(front, VARIANTS[BASE].size, target, [PREFIX, CUT])


def len_stages(model: Any) -> int:
    from sveta.embed.effnet import stage_starts

    return len(stage_starts(model))


class CutExtractor:
    """An ImageEmbedder-shaped extractor of what fine-tuning trains on, so ``embed_cached`` caches it per photo.

    A row is [earlier mid features | colour histogram | colour profile | the trained part's input, flattened].
    """

    def __init__(self, settings: Settings, stages: int, augment: str | None = None) -> None:
        from sveta.embed.effnet import open_session
        from sveta.learn.features import FeatureExtractor

        self.session: InferenceSession = open_session(
            front_graph(settings, stages), settings.onnx_threads, settings.embed_device
        )
        self.base = FeatureExtractor(settings)  # its prepare(): pixels and colour descriptors
        self.augment, self.stages = augment, stages
        self.spec = f"{CUT_VERSION}:{BASE}:s{stages}" + (f":{augment}" if augment else "")
        size = VARIANTS[BASE].size
        prefix, cut = self.session.run([PREFIX, CUT], {INPUT: np.zeros((1, size, size, 3), np.uint8)})
        self.prefix_dim, self.cut_shape = prefix.shape[1], tuple(cut.shape[1:])
        self.dim = self.prefix_dim + _colour_dim() + int(np.prod(self.cut_shape))

    def prepare(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.augment:
            image = AUGMENTATIONS[self.augment](image)
        return self.base.cnn.prepare(image), colour_histogram(image), colour_profile(image)

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), np.float32)
        prefix, cut = self.session.run([PREFIX, CUT], {INPUT: np.stack([item[0] for item in items])})
        colour = np.hstack([np.stack([item[1] for item in items]), np.stack([item[2] for item in items])])
        return np.hstack([prefix, colour, cut.reshape(len(items), -1)]).astype(np.float32)

    def split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prefix, colour descriptors, cut tensors) of cached rows."""
        a, b = self.prefix_dim, self.prefix_dim + _colour_dim()
        return rows[:, :a], rows[:, a:b], rows[:, b:].reshape(len(rows), *self.cut_shape)


def _colour_dim() -> int:
    from sveta.learn.features import BLOCKS

    return BLOCKS["colour"] + BLOCKS["profile"]


def export_backbone(network: Any, folder: Path, pixels: np.ndarray) -> tuple[Backbone, float]:
    """Write the fine-tuned ``network`` as ``folder/backbone-<sha>.onnx``; check it against torch on ``pixels``.

    Returns the backbone and the largest difference found; a graph that differs from torch is a clear error.
    """
    from sveta.embed.effnet import load_torch_graph

    graph = load_torch_graph(BASE, network).eval()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".backbone.onnx.tmp"
    export_graph(graph, VARIANTS[BASE].size, tmp, [OUTPUT, MID])
    gap = _check(graph, tmp, pixels)
    digest = sha256_file(tmp)
    path = folder / f"backbone-{digest[:16]}.onnx"
    os.replace(tmp, path)
    return Backbone(path, digest), gap


def _check(graph: Any, path: Path, pixels: np.ndarray) -> float:
    import torch

    from sveta.embed.base import l2_normalise
    from sveta.embed.effnet import open_session

    with torch.no_grad():
        expected = [t.numpy() for t in graph(torch.from_numpy(pixels))]
    got = open_session(path, 0).run([OUTPUT, MID], {INPUT: pixels})
    gap = max(float(np.abs(l2_normalise(a) - l2_normalise(b)).max()) for a, b in zip(expected, got, strict=True))
    if gap > CHECK_TOLERANCE:
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"the exported fine-tuned network differs from torch by {gap:.2g} (allowed {CHECK_TOLERANCE})",
            "report it; train without --finetune meanwhile",
        )
    return gap


def backbone_of(card: dict[str, Any], folder: Path) -> Backbone | None:
    """The fine-tuned network a model card names, checked: None for a model on the frozen CNN."""
    info = card.get("backbone")
    if not info:
        return None
    path = folder / info["file"]
    if not path.is_file() or sha256_file(path) != info["sha256"]:
        raise ConfigError(
            f"the model at {folder} needs its fine-tuned network {info['file']}, which is missing or changed",
            "train the model again: sveta train --finetune",
        )
    return Backbone(path, info["sha256"], "int8" in info)


def _write_checked(path: Path, write: Any) -> None:
    from sveta.embed.effnet import checksum_path, write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        digest = sha256_file(tmp)
        os.replace(tmp, path)
        write_atomic(checksum_path(path), f"{digest}  {path.name}\n")
    finally:
        tmp.unlink(missing_ok=True)
