"""Fetched photos' outcomes written many per transaction: a first sync of a million photos is not a million commits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from sveta.catalog.models import Image, utcnow
from sveta.catalog.store import CatalogStore

BATCH = 500  # outcomes per transaction: a killed run loses at most this many fetches, never a half-written one


@dataclass(frozen=True, slots=True)
class CachedState:
    """Where a fetched photo now is, and its real size."""

    image_id: int
    sha256: str
    local_path: str
    width: int
    height: int


def mark_images(catalog: CatalogStore, cached: list[CachedState], broken: list[tuple[int, str]]) -> None:
    """Record cached photos and broken ones ((image id, reason)), each chunk of BATCH in one transaction, as
    ``CatalogStore.mark_image_cached`` / ``mark_image_broken`` would one by one."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {"id": c.image_id, "status": "cached", "sha256": c.sha256, "local_path": c.local_path, "width": c.width}
        | {"height": c.height, "error": None, "fetched_at": now}
        for c in cached
    ]
    rows += [{"id": i, "status": "broken", "error": reason, "fetched_at": now} for i, reason in broken]
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        catalog.write(lambda s, chunk=chunk: _update(s, chunk))  # type: ignore[misc]


def _update(s: Any, rows: list[dict[str, Any]]) -> None:
    # one executemany per shape of row (cached and broken set different columns)
    for keys in {tuple(r) for r in rows}:
        s.execute(update(Image), [r for r in rows if tuple(r) == keys])


class PendingStates:
    """Outcomes waiting to be written: flushed at BATCH, when the oldest is ``max_age_s`` old, and on leaving the
    ``with`` block for any reason (an error, an interrupt), so a stopped run keeps what it finished."""

    def __init__(self, catalog: CatalogStore, *, max_age_s: float = 2.0) -> None:
        self.catalog, self.max_age_s = catalog, max_age_s
        self._cached: list[CachedState] = []
        self._broken: list[tuple[int, str]] = []
        self._since = time.monotonic()

    def __enter__(self) -> PendingStates:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.flush()

    def cached(self, image_id: int, sha256: str, local_path: str, width: int, height: int) -> None:
        self._cached.append(CachedState(image_id, sha256, local_path, width, height))
        self._maybe_flush()

    def broken(self, image_id: int, reason: str) -> None:
        self._broken.append((image_id, reason))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        full = len(self._cached) + len(self._broken) >= BATCH
        if full or time.monotonic() - self._since > self.max_age_s:
            self.flush()

    def flush(self) -> None:
        if self._cached or self._broken:
            mark_images(self.catalog, self._cached, self._broken)
        self._cached, self._broken, self._since = [], [], time.monotonic()
