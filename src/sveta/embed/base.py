"""The ImageEmbedder / TextEmbedder Protocols and the registry that builds them from spec strings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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
_REGISTRY: dict[str, Factory] = {}


def register(prefix: str) -> Callable[[Factory], Factory]:
    """Register a factory for specs equal to ``prefix`` or starting with ``prefix:`` (e.g. ``open_clip``)."""

    def decorator(factory: Factory) -> Factory:
        _REGISTRY[prefix] = factory
        return factory

    return decorator


def available_specs() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_embedder(spec: str, settings: Settings) -> ImageEmbedder:
    """The embedder a spec names: ``effnet-lite0``, ``effnet-lite0+colour``, ``open_clip:ARCH/TAG`` ..."""
    _load_builtins()
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
    _load_builtins()
    prefix = spec.split(":", 1)[0] if ":" in spec else spec
    if prefix not in _REGISTRY:
        raise ConfigError(
            f"unknown embedder {spec!r}",
            f"valid embedders: {', '.join(sorted(_REGISTRY))} (combine with '+', e.g. effnet-lite0+colour)",
        )
    return _REGISTRY[prefix]


def _load_builtins() -> None:
    # Importing the modules runs their @register decorators; their heavy imports stay inside factories.
    from sveta.embed import clip, colour_embed, effnet, text_models, tuned  # noqa: F401


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
