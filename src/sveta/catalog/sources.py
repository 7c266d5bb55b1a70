"""The registered sources as `sveta sync` reads them: name, kind and location of each."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select

from sveta.catalog.models import Source
from sveta.catalog.store import CatalogStore


class SourceEntry(NamedTuple):
    """Where one source is read from again: ``kind`` picks the reader, ``location`` is what it reads."""

    name: str
    kind: str
    location: str


def registered_sources(catalog: CatalogStore) -> list[SourceEntry]:
    """Every registered source, in the database's order."""
    with catalog.session() as s:
        return [SourceEntry(n, k, loc) for n, k, loc in s.execute(select(Source.name, Source.kind, Source.location))]
