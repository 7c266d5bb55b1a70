"""Alembic migrations run from code: the catalog schema is brought up to date when a store opens."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from sveta.catalog.transactions import WRITE

MIGRATIONS = Path(__file__).with_name("migrations")
_ONE_AT_A_TIME = threading.Lock()  # alembic's migration context is one per process: threads take turns


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``; a catalog already at head is only read (every process that opens one asks)."""
    config = alembic_config(engine)
    if revision == "head" and current(engine) == ScriptDirectory.from_config(config).get_current_head():
        return
    # One process migrates, the others then find head: SQLite's BEGIN IMMEDIATE, PostgreSQL's lock in env.py.
    config.attributes["engine"] = engine.execution_options(**WRITE)
    with _ONE_AT_A_TIME:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
