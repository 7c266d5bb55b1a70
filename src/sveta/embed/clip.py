"""CLIP-family embedders (open_clip checkpoints): photos and texts in one space, on the CPU with torch.

Specs (everything after the first ``/`` of an ``open_clip:`` spec is a pretrained tag or a checkpoint file):

- ``open_clip:ARCH/TAG``        a built-in architecture with a published tag, e.g. ``open_clip:ViT-B-16-SigLIP/webli``
- ``open_clip:ARCH/FILE``       the same architecture with a local checkpoint, e.g. ``open_clip:ViT-B-32/ckpt/b32.pt``
                                (an absolute path keeps its slash: ``open_clip:ViT-B-32//models/b32.pt``)
- ``hf-hub:ORG/NAME``           an open_clip repository on the Hugging Face hub,
                                e.g. ``hf-hub:Marqo/marqo-fashionSigLIP``
- ``local-dir:DIR``             a local copy of such a repository (``open_clip_config.json`` + weights)

Downloads go to ``settings.models_dir / "hub"`` (a Hugging Face cache; with ``HF_HUB_OFFLINE=1`` a copy
already there is used without network). Models whose config names a Hugging Face tokenizer (SigLIP and
its fine-tunes) need ``transformers`` for ``embed_texts``.

open_clip and timm import torchvision at module level, only for training transforms and frozen batch norm,
which sveta never calls: where torchvision is not installed (no CPU build of it is published for every
torch), ``import_open_clip`` imports them behind a stand-in package that is removed right afterwards.
Preprocessing is done here with PIL and numpy, from the model's own ``preprocess_cfg``.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sveta._optional import require
from sveta.embed.base import l2_normalise
from sveta.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from sveta.settings import Settings

    Tokenizer = Callable[[list[str]], torch.Tensor]

_INSTALL_HINT = (
    "run: pip install 'sveta[clip]' && pip install --no-deps 'open_clip_torch>=3.3' 'timm>=1.0.17' "
    "(--no-deps: their torchvision requirement is not needed by sveta and would replace a CPU torch)"
)
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_IMPORT_LOCK = threading.Lock()


def make_clip(spec: str, settings: Settings) -> ClipEmbedder:
    return ClipEmbedder(spec, settings)


class ClipModel(Protocol):
    """What sveta calls of an open_clip model (``CLIP`` or ``CustomTextCLIP``, both a ``torch.nn.Module``)."""

    def encode_image(self, image: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, text: torch.Tensor) -> torch.Tensor: ...


class ClipEmbedder:
    """An open_clip model: ``prepare`` + ``embed_prepared`` for photos, ``embed_texts`` for queries."""

    def __init__(self, spec: str, settings: Settings) -> None:
        require("torch", "clip")
        import torch

        self.spec = spec
        self.batch_size = settings.embed_batch_size
        self._open_clip = import_open_clip()
        self._model_name, pretrained = parse_spec(spec, self._open_clip)
        self._cache_dir = str(settings.models_dir / "hub")
        self._model = self._create(pretrained)
        cfg = self._open_clip.get_model_preprocess_cfg(self._model)
        self.input_size = _pair(cfg.get("size", 224))  # (height, width)
        self._mean = np.asarray(cfg.get("mean", (0.5, 0.5, 0.5)), dtype=np.float32)
        self._std = np.asarray(cfg.get("std", (0.5, 0.5, 0.5)), dtype=np.float32)
        self._resize_mode = cfg.get("resize_mode", "shortest")
        self._resample = _resample(cfg.get("interpolation", "bicubic"))
        self._fill = int(cfg.get("fill_color", 0))
        with torch.inference_mode():
            self.dim = int(self._model.encode_image(torch.zeros(1, 3, *self.input_size)).shape[-1])
        self._tokenizer: Tokenizer | None = None
        self._tokenizer_lock = threading.Lock()

    def _create(self, pretrained: str | None) -> ClipModel:
        try:
            model = self._open_clip.create_model(
                self._model_name, pretrained=pretrained, cache_dir=self._cache_dir, require_pretrained=True
            )
        except (RuntimeError, FileNotFoundError, ValueError, OSError) as exc:
            raise ConfigError(
                f"cannot load the CLIP model {self.spec!r}: {exc}",
                "check the spec; a hub model must be downloadable once, or already in "
                f"{self._cache_dir} (HF_HUB_OFFLINE=1), or be given as local-dir:DIR",
            ) from exc
        return model.eval().requires_grad_(False)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """(3, H, W) float32 normalised with the model's mean/std; thread-safe (PIL + numpy only)."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        fitted = fit(image, self.input_size, self._resize_mode, self._resample, self._fill)
        pixels = (np.asarray(fitted, dtype=np.float32) / 255.0 - self._mean) / self._std
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)

    def embed_prepared(self, items: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack(items).astype(np.float32, copy=False)
        out = []
        with torch.inference_mode():
            for start in range(0, len(batch), self.batch_size):
                chunk = torch.from_numpy(batch[start : start + self.batch_size])
                out.append(self._model.encode_image(chunk).float().numpy())
        return l2_normalise(np.concatenate(out))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (n, dim) float32 unit rows in the photos' space."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokenizer = self._get_tokenizer()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(list(texts[start : start + self.batch_size]))
                out.append(self._model.encode_text(tokens).float().numpy())
        return l2_normalise(np.concatenate(out))

    def _get_tokenizer(self) -> Tokenizer:
        # built on first use: image-only indexing never needs it (nor transformers, nor its download)
        with self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = self._open_clip.get_tokenizer(self._model_name, cache_dir=self._cache_dir)
            return self._tokenizer


def parse_spec(spec: str, open_clip: types.ModuleType) -> tuple[str, str | None]:
    """``(model_name, pretrained)`` for ``open_clip.create_model``; ConfigError on a malformed spec."""
    prefix, _, body = spec.partition(":")
    if not body:
        raise ConfigError(f"{spec!r} names no model", "e.g. open_clip:ViT-B-16-SigLIP/webli or hf-hub:ORG/NAME")
    if prefix == "hf-hub":
        return spec, None
    if prefix == "local-dir":
        folder = Path(body).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ConfigError(f"{spec!r}: no open_clip_config.json in {folder}", "give a local copy of the repository")
        return f"local-dir:{folder}", None
    arch, _, source = body.partition("/")
    if arch not in open_clip.list_models():
        raise ConfigError(f"{spec!r}: unknown open_clip architecture {arch!r}", "see open_clip.list_models()")
    if not source:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none published"
        raise ConfigError(f"{spec!r} names no weights", f"add /TAG ({tags}) or /path/to/checkpoint")
    return arch, _pretrained(spec, source)


def _pretrained(spec: str, source: str) -> str:
    path = Path(source).expanduser()
    if path.is_file():
        return str(path)
    if "/" in source or source.endswith(_CHECKPOINT_SUFFIXES):
        raise ConfigError(f"{spec!r}: checkpoint {source} not found", "give an existing checkpoint file")
    return source  # a pretrained tag, resolved (and downloaded once) by open_clip


def fit(image: Image.Image, size: tuple[int, int], mode: str, resample: int, fill: int = 0) -> Image.Image:
    """Resize like open_clip's eval transform: ``shortest`` (then centre-crop), ``longest`` (then pad), ``squash``."""
    from PIL import Image

    height, width = size
    if image.size == (width, height):
        return image
    if mode == "squash":
        return image.resize((width, height), resample)
    grow = max if mode == "shortest" else min
    scale = grow(width / image.width, height / image.height)
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
    canvas = Image.new("RGB", (width, height), (fill, fill, fill))
    # a negative offset crops (shortest), a positive one pads (longest)
    canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return canvas


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _resample(name: str) -> int:
    from PIL import Image

    return int(Image.Resampling.BILINEAR if name == "bilinear" else Image.Resampling.BICUBIC)


def import_open_clip() -> types.ModuleType:
    """``open_clip``, imported behind a torchvision stand-in where torchvision is not installed."""
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"]
    require("torch", "clip")
    with _IMPORT_LOCK:
        try:
            with _torchvision_stand_in():
                import open_clip
        except Exception as exc:  # ImportError, or a broken torchvision raising anything at import
            raise ConfigError(f"cannot import open_clip ({exc})", _INSTALL_HINT) from exc
    return open_clip


class _Missing:
    """Stands for any torchvision class or function: defining, subclassing and isinstance work; using fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError("this needs torchvision, which is not installed")


class _MissingMeta(type):
    def __getattr__(cls, name: str) -> Any:  # enum-like members, e.g. InterpolationMode.BICUBIC
        if name.startswith("__"):
            raise AttributeError(name)
        return _MissingMeta(name, (_Missing,), {})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _MissingMeta(name, (_Missing,), {})


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


@contextlib.contextmanager
def _torchvision_stand_in() -> Iterator[None]:
    """While open_clip (and timm) import: a stand-in torchvision if the real one is missing; then none."""
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return
    finder = _StandInFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        # later `import torchvision` must fail as before, so optional-feature checks stay truthful
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
