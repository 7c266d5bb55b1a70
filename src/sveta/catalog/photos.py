"""Counts of the catalog's photos by state (pending, cached, broken), for reports and the doctor."""

from __future__ import annotations

from sqlalchemy import func, select

from sveta.catalog.models import Image
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
