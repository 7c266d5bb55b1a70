"""Copy a whole catalog into another database (SQLite to PostgreSQL and back), every table with its ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import Connection

from sveta.catalog.keyword_index import rebuild_keywords
from sveta.catalog.models import Base
from sveta.catalog.store import CatalogStore, open_catalog, redacted_url
from sveta.catalog.transactions import WRITE
from sveta.errors import CatalogError

BATCH = 2000


def copy_catalog(
    source: CatalogStore, target_url: str, *, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every row of ``source`` into the (migrated, empty) catalog at ``target_url``; rows per table.

    Ids are kept, so what refers to them outside the database (the index, trained models' tags) stays valid.
    The keyword index is rebuilt on the target from the copied rows.
    The copy is one transaction on the target: a failure leaves it as empty as it was.
    """
    target = open_catalog(target_url)
    try:
        with _snapshot(source) as reader, target.engine.execution_options(**WRITE).begin() as writer:
            _refuse_non_empty(writer, target_url)
            counts = {t.name: _copy_table(t, reader, writer, progress) for t in Base.metadata.sorted_tables}
            if writer.dialect.name == "postgresql":
                _reset_sequences(writer)
                # Rows this transaction wrote have no statistics yet (autovacuum sees them only once committed):
                # the keyword rebuild's per-batch look-up of attributes was then a scan of all of them, about a
                # second a batch of 500 at a million products, 30 minutes in all
                writer.execute(text(f"ANALYZE {', '.join(t.name for t in Base.metadata.sorted_tables)}"))
            rebuild_keywords(writer)  # the keyword index is derived (each engine has its own kind), not copied
    finally:
        target.engine.dispose()
    return counts


@contextmanager
def _snapshot(source: CatalogStore) -> Iterator[Connection]:
    """One read transaction over every table, so a crawl that writes meanwhile cannot leave dangling references."""
    with source.engine.connect() as reader:
        if reader.dialect.name != "sqlite":  # SQLite's BEGIN (transactions.py) already reads one snapshot
            reader = reader.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield reader
        finally:
            reader.rollback()


def _refuse_non_empty(writer: Connection, target_url: str) -> None:
    filled = [t.name for t in Base.metadata.sorted_tables if writer.scalar(select(func.count()).select_from(t))]
    if filled:
        raise CatalogError(
            f"the target catalog {redacted_url(target_url)} already holds rows (tables: {', '.join(filled)})",
            "copy into an empty database, or empty this one first (it is never merged into)",
        )


def _copy_table(
    table: Table, reader: Connection, writer: Connection, progress: Callable[[str, int], None] | None
) -> int:
    copied = 0
    query = select(table).order_by(*table.primary_key.columns)
    rows = reader.execution_options(yield_per=BATCH).execute(query).mappings()  # streamed, not all in memory
    while chunk := [dict(r) for r in rows.fetchmany(BATCH)]:
        writer.execute(table.insert(), chunk)
        copied += len(chunk)
        if progress is not None:
            progress(table.name, len(chunk))
    return copied


def _reset_sequences(writer: Connection) -> None:
    """Explicit ids leave PostgreSQL's sequences at 1: move each past the largest id, or the next insert clashes."""
    for table in Base.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if not column.autoincrement or column.type.python_type is not int:
                continue
            writer.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX({column.name}), 0) + 1, false) "
                    f"FROM {table.name}"
                ),
                {"t": table.name, "c": column.name},
            )


def table_counts(store: CatalogStore) -> dict[str, Any]:
    """Rows per table, to compare a copy with its original."""
    with store.engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
