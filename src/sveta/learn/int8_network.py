"""The INT8 copy of the CNN that training reads its features from: calibrated on training photos, kept by the model."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sveta.atomic import copy_file
from sveta.learn.features import BASE, Backbone
from sveta.learn.labels import Example, stable_share

if TYPE_CHECKING:
    from sveta.settings import Settings


def int8_network(examples: Sequence[Example], settings: Settings) -> tuple[Backbone, dict[str, Any]] | None:
    """The frozen CNN quantised to INT8 (``sveta.embed.quantize.DEFAULT``), calibrated on a seeded draw of the
    training photos, and its model-card entry; None when training stays on FP32 (SVETA_TRAIN_INT8=false, no
    ``onnx`` to quantise with, or a CPU that runs INT8 inaccurately: the report then says why)."""
    if trained_on(settings):
        return None
    from sveta.embed.effnet import EffNetEmbedder, sha256_file
    from sveta.embed.quantize import DEFAULT, SUFFIX

    chosen = sorted(examples, key=lambda e: stable_share(e.key, "calibration"))[: DEFAULT.photos]
    cnn = EffNetEmbedder(BASE + SUFFIX, settings, calibration=[e.path for e in chosen])
    sha256 = sha256_file(cnn.model_path)
    network = settings.models_dir / f"backbone-{sha256[:16]}.onnx"  # named as a fine-tuned network: a model's own
    if not network.is_file() or sha256_file(network) != sha256:
        copy_file(cnn.model_path, network)
    card = {
        "file": network.name,
        "sha256": sha256,
        "base": BASE,
        "int8": {"quantisation": DEFAULT.tag(), "calibration": "training photos", "photos": len(chosen)},
    }
    return Backbone(network, sha256, int8=True), card


def trained_on(settings: Settings) -> str:
    """Why a model was trained on FP32 features, for its report ("" when INT8 was asked for and possible)."""
    if not settings.train_int8:
        return "FP32 features (SVETA_TRAIN_INT8=false)"
    if importlib.util.find_spec("onnx") is None:
        return "FP32 features: quantising to INT8 needs onnx (pip install 'sveta[export]')"
    from sveta.embed.quantize import int8_unfit

    unfit = int8_unfit()
    return f"FP32 features: {unfit}" if unfit else ""
