"""Where trained attribute models live: find, load and save them, and a cache for whoever keeps one loaded."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta.atomic import write_text
from sveta.settings import TUNED_MODEL

if TYPE_CHECKING:
    from sveta.learn.heads import AttributeModel
    from sveta.settings import Settings

DEFAULT_NAME = TUNED_MODEL


def model_dir(settings: Settings, name: str = DEFAULT_NAME) -> Path:
    return settings.tuned_model_dir(name)


def has_model(settings: Settings, name: str = DEFAULT_NAME) -> bool:
    return settings.has_tuned_model(name)


def load_model(settings: Settings, name: str = DEFAULT_NAME) -> AttributeModel:
    """The trained model ``name``, read from disk now (a ConfigError when there is none)."""
    from sveta.learn.heads import AttributeModel  # numpy and the feature code: only for those that load

    return AttributeModel.load(model_dir(settings, name), settings)


def save_model(model: AttributeModel, settings: Settings, name: str = DEFAULT_NAME, *, card: bool = True) -> Path:
    """Store ``model`` as ``name`` (replacing it); with ``card``, its model card too (card.json, card.md)."""
    folder = model_dir(settings, name)
    model.save(folder)
    if card:
        write_text(folder / "card.json", json.dumps(model.card, indent=2, default=str) + "\n")
        write_text(folder / "card.md", model_card_markdown(model.card))
    return folder


class ModelCache:
    """The trained models one owner (an engine, the API, a command) keeps loaded; a retrained one replaces its old
    version on the next ``get``, since the key is the model file's path and modification time."""

    def __init__(self) -> None:
        self._models: dict[Path, tuple[int, AttributeModel]] = {}
        self._lock = threading.Lock()  # the API's worker threads share one cache: one load per version

    def get(self, settings: Settings, name: str = DEFAULT_NAME) -> AttributeModel:
        folder = model_dir(settings, name)
        stamp = _mtime(folder / "model.npz")
        with self._lock:
            held = self._models.get(folder)
            if held is None or held[0] != stamp:
                self._models[folder] = (stamp, load_model(settings, name))
            return self._models[folder][1]


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0  # load_model then says there is no model


def _network(card: dict[str, Any]) -> str:
    net = card.get("backbone")
    if not net:
        return "frozen ImageNet EfficientNet-Lite0"
    if "int8" in net:
        q = net["int8"]
        how = f"{q['quantisation']}, calibrated on {q['photos']} {q['calibration']}"
        return f"frozen ImageNet EfficientNet-Lite0 quantised to INT8 ({how}): {net['file']}"
    return (
        f"EfficientNet-Lite0 fine-tuned on this catalog: {net['trained']}, {net['epochs']} epochs on {net['device']}, "
        f"views {', '.join(net['views'])}; exported to {net['file']} (ONNX, max difference from torch "
        f"{net['onnx_check_max_diff']})"
    )


def model_card_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# Model card: tuned:{card['name']}",
        "",
        f"- trained {card['created']} on {card['n_train']} products, measured on {card['n_test']} held-out ones",
        f"- features: {card['features']} ({_network(card)} + colour descriptors)",
        f"- use: `SVETA_EMBEDDER=tuned:{card['name']}`, `sveta tag`, `sveta audit`; text map: {card['text_map']}",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(card["metrics"].items())],
        "",
        "## Labels",
        *[f"- {a} ({len(v)}): {', '.join(v)}" for a, v in card["labels"].items()],
        "",
    ]
    return "\n".join(lines)
