"""The catalog's photos by state (pending, cached, broken): counts for reports and the doctor, and moving a cache."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select, update

from sveta.catalog.models import Image, utcnow
from sveta.catalog.store import CatalogStore


def photo_counts(catalog: CatalogStore) -> dict[str, int]:
    """Images by status: pending, cached, broken (a status no image has is left out)."""
    query = select(Image.status, func.count(Image.id)).group_by(Image.status)
    with catalog.session() as s:
        return {status: int(n) for status, n in s.execute(query)}


def uncached_count(catalog: CatalogStore) -> int:
    """Images without a cached file: not fetched yet, or broken."""
    with catalog.session() as s:
        return int(s.scalar(select(func.count(Image.id)).where(Image.status != "cached")) or 0)


def relocate_cached(catalog: CatalogStore, old_dir: str, new_dir: Path) -> tuple[int, int]:
    """Photos cached under ``old_dir`` pointed at the same file under ``new_dir``; those missing there made pending
    (fetched again). Returns (moved, to fetch)."""
    moved: list[dict[str, object]] = []
    missing: list[int] = []
    query = select(Image.id, Image.local_path).where(
        Image.status == "cached", Image.local_path.startswith(old_dir + os.sep, autoescape=True)
    )
    with catalog.session() as s:
        for image_id, path in s.execute(query):
            now = new_dir / str(path)[len(old_dir) + 1 :]
            if not now.is_file():
                missing.append(image_id)
            elif str(now) != path:
                moved.append({"id": image_id, "local_path": str(now)})
        if moved:
            s.execute(update(Image), moved)
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            reset = {"status": "pending", "local_path": None, "fetched_at": utcnow()}  # a new state: see stats.py
            s.execute(update(Image).where(Image.id.in_(chunk)).values(**reset))
    return len(moved), len(missing)
