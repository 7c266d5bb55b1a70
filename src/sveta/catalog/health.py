"""What `sveta doctor` asks the catalog: one round trip, the schema's revision against head, its URL's secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sveta.catalog.store import CatalogStore


@dataclass(frozen=True)
class SchemaState:
    """The database's Alembic revision (None: no sveta tables), this sveta's head, and every revision it knows."""

    current: str | None
    head: str | None
    known: frozenset[str]


def open_checked(url: str, connect_timeout_s: int) -> CatalogStore:
    """The store at ``url`` after one round trip, never migrated (Postgres: a connect timeout unless the URL sets
    one); the engine is closed again when the round trip fails."""
    from sqlalchemy import text

    from sveta.catalog.store import open_catalog

    if url.startswith("postgresql") and "connect_timeout" not in url:
        from sqlalchemy.engine import make_url

        with_timeout = make_url(url).update_query_dict({"connect_timeout": str(connect_timeout_s)})
        url = with_timeout.render_as_string(hide_password=False)
    store = open_catalog(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except BaseException:
        store.engine.dispose()
        raise
    return store


def schema_state(store: CatalogStore) -> SchemaState:
    """Where the database's schema stands; raises what the driver raises when its version cannot be read."""
    from alembic.script import ScriptDirectory

    from sveta.catalog.migrate import alembic_config, current

    script = ScriptDirectory.from_config(alembic_config(store.engine))
    head = script.get_current_head()
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return SchemaState(current(store.engine), head, known)


def redact_url(url: str) -> str:
    """The URL with its password replaced by *** (by pattern when SQLAlchemy cannot parse it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def url_password(url: str) -> str:
    """The password in a database URL, "" when it has none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password or ""
    except (ArgumentError, ValueError):
        match = re.search(r"://[^:/@]*:([^@]*)@", url)
        return match.group(1) if match else ""
