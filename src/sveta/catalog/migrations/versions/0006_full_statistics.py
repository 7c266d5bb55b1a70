"""full statistics: SQLite's planner statistics read whole, not sampled (a sampled key looked selective)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Catalogs analysed with analysis_limit = 1000 (before this revision) hold statistics from each index's first 1,000
# entries: ``available`` or an attribute's name looked like ~1,000 rows a value, and SQLite read half a million rows
# through such an index for one product page. CatalogStore.refresh_statistics now reads them whole; this brings an
# existing catalog's statistics to the same (8.5 s at a million products, once). PostgreSQL's never were sampled so.
# The tables and the ANALYZE are written out, not imported from CatalogStore.refresh_statistics: a migration
# stays what it was when later code changes.
TABLES = ("products", "variants", "images", "attributes")


def upgrade() -> None:
    bind = op.get_bind()
    if (
        bind.dialect.name != "sqlite"
        or not bind.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first()
    ):
        return  # never analysed: the first ingest's refresh writes full statistics
    bind.execute(sa.text("PRAGMA analysis_limit = 0"))
    for table in TABLES:
        bind.execute(sa.text(f"ANALYZE {table}"))


def downgrade() -> None:
    pass  # full statistics are right for the older code too
