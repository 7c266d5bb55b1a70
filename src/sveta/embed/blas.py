"""One BLAS thread for a query's few rows: OpenBLAS's idle workers spin after each call and take the cores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# A query's matrix products (a few rows through the trained heads and the text map) take well under a millisecond on
# one thread. On more, OpenBLAS's workers then spin for up to ~0.1 s waiting for the next product, and the next thing
# to run (the text model's engine, onnxruntime) loses a core: measured on 2 cores at 100k products, text embedding
# p99 116 -> 12 ms with the products kept on one thread, p50 unchanged (8 ms).
FEW_ROWS = 64
_lock = threading.Lock()
_state: dict[str, Any] = {"controller": None, "inside": 0, "limit": None}


@contextmanager
def blas_for(rows: int) -> Iterator[None]:
    """Inside: BLAS on one thread when ``rows`` is a query's few, else as it was (a build's batches keep every core).

    The setting is the process's: the first query in sets it and the last one out restores it, so overlapping
    queries in a server's threads never leave it at one thread."""
    if rows > FEW_ROWS:
        yield
        return
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    with _lock:
        if _state["controller"] is None:
            from threadpoolctl import ThreadpoolController

            # finding the loaded BLAS libraries costs ~5 ms: once. It steers those loaded by then, numpy's among
            # them (loaded on import), which the heads' products run on; one loaded later keeps its threads.
            _state["controller"] = ThreadpoolController()
        if _state["inside"] == 0:
            _state["limit"] = _state["controller"].limit(limits=1, user_api="blas")
        _state["inside"] += 1


def _leave() -> None:
    with _lock:
        _state["inside"] -= 1
        if _state["inside"] == 0:
            _state["limit"].restore_original_limits()
            _state["limit"] = None
