"""Alembic environment: uses the engine handed over by sveta.catalog.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sveta.catalog.models import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url") or "")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    )
    context.run_migrations()
