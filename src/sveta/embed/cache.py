"""A cache of embeddings keyed by (embedder spec, image sha256), shared by index builds, evals and training."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sveta.atomic import write_npz


class EmbeddingCache:
    """One .npz per embedder spec under ``data_dir/embeddings``; a changed photo has a new sha, so a new row."""

    def __init__(self, root: Path, spec: str, dim: int) -> None:
        self.path = root / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', spec)}.npz"
        self.spec, self.dim = spec, dim
        self._rows: dict[str, np.ndarray] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        self._rows = self._read()

    def _read(self) -> dict[str, np.ndarray]:
        if not self.path.is_file():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["spec"]) != self.spec or data["vectors"].shape[1] != self.dim:
                    return {}  # made by another embedder version: ignore, it will be rewritten
                return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            return {}  # a damaged cache only costs recomputation

    def get(self, key: str) -> np.ndarray | None:
        return self._rows.get(key)

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        for key, vector in zip(keys, vectors, strict=True):
            self._rows[key] = vector
        self._dirty = True

    def __len__(self) -> int:
        return len(self._rows)

    def save(self) -> None:
        """Write atomically (temp file + rename), only when something was added."""
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # another process (an eval beside an index build) may have saved rows since we read: keep them
        self._rows = self._read() | self._rows
        keys = np.array(list(self._rows), dtype="U64")
        vectors = np.stack(list(self._rows.values())).astype(np.float32)
        write_npz(self.path, {"keys": keys, "vectors": vectors, "spec": np.array(self.spec)})
        self._dirty = False
