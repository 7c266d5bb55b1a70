"""Alembic environment: uses the engine handed over by sveta.catalog.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from sveta.catalog.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url") or "")


def _modelled(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate leaves the keyword index alone: migration 0002 writes it by hand (FTS5 has no model)."""
    return not (type_ == "table" and (name or "").startswith("product_keywords"))


MIGRATION_LOCK = 0x73766574  # "svet": PostgreSQL advisory lock held while one process migrates

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":  # two processes opening a new catalog at once: one migrates
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        include_name=_modelled,
    )
    context.run_migrations()
