"""The catalog's database engine: SQLite (WAL, foreign keys, the busy timeout, BEGIN IMMEDIATE writes) or a server."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from sveta.catalog.transactions import sqlite_transactions
from sveta.errors import CatalogError

URL_HINT = "check SVETA_DATABASE_URL (or SVETA_DATA_DIR for the default SQLite file) and that the server is up"


def catalog_engine(url: str, busy_timeout_s: float) -> Engine:
    """An engine for ``url``; on SQLite a write waits ``busy_timeout_s`` for another writer's lock."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
        event.listen(engine, "connect", _sqlite_pragmas)
        sqlite_transactions(engine)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # bad URL or missing driver
        shown = redacted_url(url)
        raise CatalogError(
            f"cannot use database URL {shown!r}: {str(exc).replace(url, shown)}",
            "check SVETA_DATABASE_URL; for Postgres run: pip install 'sveta[postgres]'",
        ) from exc


def redacted_url(url: str) -> str:
    """The URL with its password masked: error messages end up in logs and terminals."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: show only the scheme
        return url.split("://", 1)[0] + "://..."


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create the catalog folder {Path(path).parent}: {exc.strerror}", URL_HINT
            ) from exc


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL lets readers (the API) go on while an ingest writes; foreign keys make cascades real.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
