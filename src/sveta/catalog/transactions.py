"""Writes that share the catalog: SQLite's BEGIN IMMEDIATE, bounded retries of busy, deadlocked and conflicting ones.

Several writers use one catalog at once: `sveta serve`'s API and its background sync, a `sveta ingest` in a shell,
a tagging job. Each write is one short transaction (a batch of products, one image's state, a chunk of tags) run
through ``Retries.run``, which runs it again, after a short jittered backoff, when the database says another writer
was in the way:

- SQLite ``SQLITE_BUSY`` / ``SQLITE_LOCKED`` ("database is locked"), after the busy timeout has already waited;
- PostgreSQL serialization failures (40001), deadlocks (40P01), and unique violations (23505): two writers inserting
  the same key at once (a source registered twice); the rerun reads the committed row and updates it instead.

Write transactions on SQLite begin with ``BEGIN IMMEDIATE``: they take the write lock first, waiting for it under
the busy timeout. A plain (deferred) ``BEGIN`` that reads and then writes would have to upgrade its lock, and SQLite
answers that upgrade with an immediate "database is locked" the busy timeout never waits for. Reads keep a deferred
``BEGIN``: in WAL mode they never wait for a writer. What is still busy after the last try becomes a CatalogError
with a hint, never a raw driver error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from sveta.errors import CatalogError, StorageError, database_storage_error

log = logging.getLogger("sveta.catalog")
T = TypeVar("T")
WRITE = {"sveta_write": True}  # execution options of a write transaction's connection
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # primary result codes; extended codes (BUSY_SNAPSHOT...) keep them in the low byte
_PG_RETRY = {"40001", "40P01", "23505"}  # serialization_failure, deadlock_detected, unique_violation
_LOCKED_WORDS = ("database is locked", "database table is locked", "database is busy")


@dataclass
class Retries:
    """How a catalog's writes are retried; ``taken`` counts the retries this process made (for reports)."""

    attempts: int = 5
    base_s: float = 0.05
    cap_s: float = 2.0
    busy_timeout_s: float = 30.0  # SQLite's busy timeout, named in the hint of a write that stayed busy
    taken: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def run(self, work: Callable[[], T]) -> T:
        """``work()``, again after a backoff while the database asks for a retry; the last error is raised."""
        for attempt in range(1, self.attempts + 1):
            try:
                return work()
            except DBAPIError as exc:
                if attempt == self.attempts or not retryable(exc):
                    raise
                delay = min(self.cap_s, self.base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                with self._lock:
                    self.taken += 1
                log.info("catalog write retried in %.2f s (%s), try %d", delay, _reason(exc), attempt + 1)
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


def retryable(exc: DBAPIError) -> bool:
    """Did the database refuse because another writer was in the way (so that the same write may succeed)?"""
    if locked(exc):
        return True
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state in _PG_RETRY


def locked(exc: DBAPIError) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY / SQLITE_LOCKED), by result code or, failing that, by message."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return any(word in str(exc.orig).lower() for word in _LOCKED_WORDS)


def catalog_error(exc: DBAPIError, retries: Retries, tries: int = 1) -> CatalogError | StorageError:
    """The CatalogError a user sees for a database error that ``tries`` tries did not get past."""
    if (storage := database_storage_error(exc)) is not None:  # a full or read-only disk: the operator's to fix
        return storage
    after = f", after {tries} tries" if tries > 1 else ""
    if locked(exc):
        return CatalogError(
            f"the catalog database stayed busy with other writers ({_reason(exc)}{after})",
            f"another process held the catalog's write lock for over {retries.busy_timeout_s:g} s each time: "
            "let a long job (an ingest, a tagging run) finish and try again, or raise SVETA_DB_BUSY_TIMEOUT_S",
        )
    if getattr(exc.orig, "sqlstate", None) in ("40001", "40P01"):
        return CatalogError(
            f"other writers kept the catalog database from taking this write ({_reason(exc)}{after})",
            "try again; if it keeps happening, run fewer ingests or tagging jobs at once",
        )
    if isinstance(exc, IntegrityError):
        return CatalogError(
            f"the catalog refused a write: {exc.orig}",
            "another process may be writing the same products; run one ingest per source at a time",
        )
    return CatalogError(f"catalog database error: {exc.orig}", "check SVETA_DATABASE_URL")


def sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not Python's sqlite3, begin SQLite transactions: BEGIN IMMEDIATE for writes, BEGIN for reads.

    SQLAlchemy's documented recipe (pysqlite, "Serializable isolation / Savepoints / Transactional DDL"), with the
    write flag read from the connection's execution options (``WRITE``).
    """
    event.listen(engine, "connect", _driver_begins_nothing)
    event.listen(engine, "checkout", _driver_begins_nothing_again)
    event.listen(engine, "begin", _begin)


def _driver_begins_nothing(dbapi_conn: Any, _record: object) -> None:
    dbapi_conn.isolation_level = None  # sqlite3 would BEGIN (deferred) before DML, and skip it before a SELECT


def _driver_begins_nothing_again(dbapi_conn: Any, _record: object, _proxy: object) -> None:
    # A connection that ran with isolation_level="AUTOCOMMIT" comes back reset to sqlite3's own transactions.
    if dbapi_conn.isolation_level is not None and not dbapi_conn.in_transaction:
        dbapi_conn.isolation_level = None


def _begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sveta_write") else "BEGIN")


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
