"""The benchmark's index backend: the embedded FAISS index, each new vector moved by noise, so that a photo reused
for a hundred products gives a hundred near vectors, not a hundred identical ones ("real embeddings, replicated
with noise"). Only index builds go through it; reads open the plain FAISS index it writes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sveta.index.backends import BUILTINS, Backend
from sveta.index.base import ItemMeta, VectorIndex
from sveta.index.targets import FaissTarget
from sveta.settings import Settings

PREFIX = "noisy:"
# a replica's cosine to its photo: about a real photo's nearest other product in the demo catalog (median 0.943,
# 10th nearest 0.912), so replicas of one photo sit 0.90 from each other
COSINE = 0.95
SAME_VECTOR = 1e-6  # as FaissIndex: a stored vector given back (a metadata-only update) is not moved again


def build_settings(settings: Settings) -> Settings:
    """``settings`` whose index builds add the noise (the backend is registered on first use)."""
    BUILTINS.setdefault(PREFIX, Backend("benchmarks._noisy_index:noisy_target", "noisy: (benchmarks only)"))
    return settings.model_copy(update={"index_url": PREFIX})


def noisy_target(url: str, settings: Settings) -> NoisyTarget:
    return NoisyTarget()


class NoisyTarget(FaissTarget):
    """The FAISS folder, opened behind the noise."""

    def open(
        self, path: Path, *, embedder: str, dim: int, settings: Settings, create: bool, identity: str
    ) -> VectorIndex:
        inner = super().open(path, embedder=embedder, dim=dim, settings=settings, create=create, identity=identity)
        return NoisyIndex(inner)


class NoisyIndex:
    """A VectorIndex whose ``upsert`` moves each vector it has not stored yet to cosine COSINE of the given one."""

    def __init__(self, inner: VectorIndex) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, meta: Sequence[ItemMeta]) -> None:
        ids = np.asarray(ids, np.int64)
        vectors = np.asarray(vectors, np.float32) / np.linalg.norm(vectors, axis=1, keepdims=True)
        move = np.ones(len(ids), bool)
        held = np.isin(ids, self._inner.ids())
        if held.any():
            stored = self._inner.vectors(ids[held])
            move[held] = ~(np.abs(stored - vectors[held]) <= SAME_VECTOR).all(axis=1)
        rng = np.random.default_rng(int(ids[0]) if len(ids) else 0)
        noise = rng.standard_normal((int(move.sum()), vectors.shape[1])).astype(np.float32)
        noise -= (noise * vectors[move]).sum(axis=1, keepdims=True) * vectors[move]  # orthogonal to the vector
        noise *= math.sqrt(1 / COSINE**2 - 1) / np.linalg.norm(noise, axis=1, keepdims=True)
        moved = vectors.copy()
        moved[move] += noise
        self._inner.upsert(ids, moved / np.linalg.norm(moved, axis=1, keepdims=True), meta)
