"""The VectorIndex Protocol, the metadata filters run inside it, and the config.json that guards it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sveta.errors import ConfigError

METRICS = ("cosine", "l1")


@dataclass(slots=True)
class ItemMeta:
    """What filters can ask about one indexed vector (one product image)."""

    product_id: int
    category: str | None = None
    gender: str | None = None
    colour: str | None = None
    brand: str | None = None
    source: str | None = None
    price: float | None = None
    available: bool = True
    sha256: str | None = None  # the photo the vector was made from: a new sha means re-embed


@dataclass(slots=True)
class Filter:
    """Conditions applied inside the search; a list means "any of"; None means "no condition"."""

    category: list[str] | None = None
    gender: list[str] | None = None
    colour: list[str] | None = None
    brand: list[str] | None = None
    source: list[str] | None = None
    price_min: float | None = None
    price_max: float | None = None
    available: bool | None = None
    exclude_products: list[int] = field(default_factory=list)
    # field (category, gender, colour, brand, source) -> values a row must not have ("not black"); a row with
    # no value for the field passes
    exclude: dict[str, list[str]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return all(getattr(self, f) in (None, [], {}) for f in self.__slots__)

    @classmethod
    def of(
        cls,
        *,
        gender: list[str] | None = None,
        colour: list[str] | None = None,
        brand: list[str] | None = None,
        source: list[str] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        in_stock: bool = False,
    ) -> Filter:
        """From user options (the CLI's flags, the API's query parameters): empty lists and False mean no condition."""
        return cls(
            gender=gender or None,
            colour=colour or None,
            brand=brand or None,
            source=source or None,
            price_min=price_min,
            price_max=price_max,
            available=True if in_stock else None,
        )


@dataclass(slots=True)
class Hit:
    id: int  # the vector's id (an image id)
    product_id: int
    score: float  # higher is better (cosine similarity; negative L1 distance)


@dataclass(slots=True)
class IndexConfig:
    """Written as config.json beside the index: what made it, so another embedder cannot open it."""

    embedder: str
    dim: int
    metric: str = "cosine"
    kind: str = "flat"  # flat | hnsw
    count: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    identity: str = ""  # the spec plus a composed embedder's weights ("" in indexes older than the field)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> IndexConfig:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            hint = "rebuild with `sveta index build`"
            raise ConfigError(f"unreadable index config {path}: {exc}", hint) from exc

    def check(self, embedder: str, dim: int, identity: str = "") -> None:
        """Refuse to serve vectors made by another embedder (they would be silent garbage)."""
        if (self.embedder, self.dim) != (embedder, dim):
            raise ConfigError(
                f"the index was built with embedder {self.embedder!r} ({self.dim}-d), not {embedder!r} ({dim}-d)",
                f"use SVETA_EMBEDDER={self.embedder}, or rebuild: sveta index build --embedder {embedder}",
            )
        if identity and self.identity and identity != self.identity:
            built, now = self.identity.partition("@")[2], identity.partition("@")[2]
            if self.embedder.startswith("tuned"):  # the model was retrained since the index was built
                raise ConfigError(
                    f"the index was built with {self.embedder} version {built}, the trained model is now {now}",
                    "rebuild it with the new model: sveta index build --rebuild",
                )
            raise ConfigError(
                f"the index was built with {self.embedder} weights {built}, settings now give {now}",
                "set SVETA_EMBED_WEIGHTS back, or rebuild with the new weights: sveta index build --rebuild",
            )


def unit_vectors(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """Contiguous float32 rows of norm 1 (ValueError on a wrong shape or a zero, NaN or infinite row)."""
    v = np.asarray(vectors, np.float32)
    v = v[None, :] if v.ndim == 1 else v
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(f"{what} of shape {np.shape(vectors)}, the index holds {dim}-d vectors")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if not (np.isfinite(norms).all() and (norms > 0).all()):
        raise ValueError(f"{what} with a zero, NaN or infinite row")
    # the Protocol promises unit vectors: enforce it so cosine scores are cosines
    return np.ascontiguousarray(v / norms, np.float32)


def as_ids(ids: np.ndarray | Sequence[int]) -> np.ndarray:
    out = np.asarray(ids, np.int64)
    if out.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, not of shape {out.shape}")
    return out


@runtime_checkable
class VectorIndex(Protocol):
    """Upsert / remove / filtered search of L2-normalised vectors keyed by int64 ids; saved atomically."""

    config: IndexConfig

    def __len__(self) -> int: ...

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, meta: Sequence[ItemMeta]) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def ids(self) -> np.ndarray: ...

    def vectors(self, ids: np.ndarray) -> np.ndarray: ...

    def meta(self, ids: np.ndarray) -> list[ItemMeta]: ...

    def search(
        self, queries: np.ndarray, k: int, flt: Filter | None = None, *, distinct_products: bool = True
    ) -> list[list[Hit]]: ...

    def save(self) -> None: ...
