"""One BLAS thread for a query's few rows: OpenBLAS's idle workers spin after each call and take the cores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# A query's matrix products (a few rows through the trained heads and the text map) take well under a millisecond on
# one thread. On more, OpenBLAS's workers then spin for up to ~0.1 s waiting for the next product, and the next thing
# to run (the text model's engine, onnxruntime) loses a core: measured on 2 cores at 100k products, text embedding
# p99 116 -> 15 ms with the products kept on one thread, p50 unchanged (8 ms).
FEW_ROWS = 64
_controller: list[Any] = []
_lock = threading.Lock()


@contextmanager
def blas_for(rows: int) -> Iterator[None]:
    """Inside: BLAS on one thread when ``rows`` is a query's few, else as it was (a build's batches keep every core)."""
    if rows > FEW_ROWS:
        yield
        return
    with _limit():
        yield


def _limit() -> Any:
    with _lock:
        if not _controller:
            from threadpoolctl import ThreadpoolController

            _controller.append(ThreadpoolController())  # finding the loaded BLAS libraries costs ~5 ms: once
    return _controller[0].limit(limits=1, user_api="blas")
