"""A small, thread-safe map of the most recently used query vectors (least recently used out first)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


class RecentQueries:
    """Up to ``size`` query texts and their vectors; a hit becomes the most recent. Vectors are kept read-only so
    that no caller can change what the next one gets."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            rows = self._rows.get(text)
            if rows is not None:
                self._rows.move_to_end(text)
            return rows

    def put(self, text: str, rows: np.ndarray) -> None:
        rows.setflags(write=False)
        with self._lock:
            self._rows[text] = rows
            self._rows.move_to_end(text)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
