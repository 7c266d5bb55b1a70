"""The ImageEmbedder / TextEmbedder Protocols and the registry that builds them from spec strings."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np

from sveta.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from sveta.settings import Settings


@runtime_checkable
class ImageEmbedder(Protocol):
    """Turns photos into vectors in two steps, so decoding can run in threads while the model runs.

    ``prepare`` is called from worker threads on one RGB image (already padded to a square by
    ``sveta.images.prepare``) and must be cheap and thread-safe; ``embed_prepared`` runs the model on a
    batch of prepared items and returns an (n, dim) float32 array whose rows are L2-normalised.
    """

    spec: str
    dim: int

    def prepare(self, image: Image.Image) -> Any: ...

    def embed_prepared(self, items: Sequence[Any]) -> np.ndarray: ...


@runtime_checkable
class TextEmbedder(Protocol):
    """Texts -> (n, dim) float32 L2-normalised rows (CLIP models: in the same space as their images)."""

    spec: str
    dim: int

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


Factory = Callable[[str, "Settings"], Any]
# Built-in specs -> "module:factory"; a module is imported only when one of its specs is asked for, so this base
# module imports no plugin (and the tuned embedder, which lives with the models in sveta.learn, stays above it).
BUILTINS: dict[str, str] = {
    "effnet-lite0": "sveta.embed.effnet:make_effnet",
    "effnet-lite2": "sveta.embed.effnet:make_effnet",
    "effnet-lite0-int8": "sveta.embed.effnet:make_effnet",
    "effnet-lite2-int8": "sveta.embed.effnet:make_effnet",
    "colour": "sveta.embed.colour_embed:make_colour",
    "open_clip": "sveta.embed.clip:make_clip",
    "hf-hub": "sveta.embed.clip:make_clip",
    "local-dir": "sveta.embed.clip:make_clip",
    "e5-small": "sveta.embed.text_models:make_e5",
    "bge-small": "sveta.embed.text_models:make_bge",
    "tuned": "sveta.learn.tuned:make_tuned",
    "tuned-int8": "sveta.learn.tuned:make_tuned_int8",
}
_REGISTRY: dict[str, Factory] = {}


def register(prefix: str, factory: Factory | str) -> None:
    """Register a factory (or its "module:function" path) for specs equal to ``prefix`` or ``prefix:...``."""
    _REGISTRY[prefix] = factory if callable(factory) else _lazy(factory)


def available_specs() -> list[str]:
    return sorted({*BUILTINS, *_REGISTRY})


def get_embedder(spec: str, settings: Settings) -> ImageEmbedder:
    """The embedder a spec names: ``effnet-lite0``, ``effnet-lite0+colour``, ``open_clip:ARCH/TAG`` ..."""
    parts = [p.strip() for p in spec.split("+")]
    if len(parts) > 1:
        from sveta.embed.compose import ComposedEmbedder

        return ComposedEmbedder([get_embedder(p, settings) for p in parts], settings)
    return _factory(spec)(spec, settings)


def get_text_embedder(spec: str, settings: Settings) -> TextEmbedder:
    """A text embedder: a CLIP spec (its text tower) or an offline text model spec."""
    embedder = _factory(spec)(spec, settings)
    if not isinstance(embedder, TextEmbedder):
        raise ConfigError(f"{spec!r} cannot embed text", "use a CLIP embedder (open_clip:..., hf-hub:...)")
    return embedder


def _factory(spec: str) -> Factory:
    prefix = spec.split(":", 1)[0] if ":" in spec else spec
    if prefix in _REGISTRY:
        return _REGISTRY[prefix]
    if prefix in BUILTINS:
        return _lazy(BUILTINS[prefix])
    raise ConfigError(
        f"unknown embedder {spec!r}",
        f"valid embedders: {', '.join(available_specs())} (combine with '+', e.g. effnet-lite0+colour)",
    )


def _lazy(path: str) -> Factory:
    module, _, name = path.partition(":")
    return cast(Factory, getattr(importlib.import_module(module), name))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
