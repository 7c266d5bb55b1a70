"""sync index: a re-sync reads stored fingerprints and a source's live products from one narrow index

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# An unchanged re-sync asks, per batch of 500, for the stored fingerprints of its ids, and marking gone reads every
# live product of the source. Through the unique (source, external id) index each found row then read the product's
# wide row from the table: at a million products with a cold cache 6.4 ms a batch (13 s for 2,000 batches), and
# 11 s for the gone list. From this index alone (partial: live products only; PostgreSQL INCLUDEs the id the gone
# list needs, SQLite's rowid is in every index) 2.1 ms a batch and 1.7 s. Written out here, not taken from
# the model: a migration stays what it was.
NAME = "ix_products_source_sync"


def upgrade() -> None:
    bind = op.get_bind()
    live = sa.text("gone_at IS NULL")
    op.create_index(
        NAME,
        "products",
        ["source_id", "external_id", "fingerprint"],
        postgresql_include=["id"],
        postgresql_where=live,
        sqlite_where=live,
    )
    if (
        bind.dialect.name == "sqlite"
        and bind.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first()
    ):
        # without statistics for it SQLite keeps choosing the unique index, which reads the table's rows
        bind.execute(sa.text("PRAGMA analysis_limit = 0"))
        bind.execute(sa.text(f"ANALYZE {NAME}"))


def downgrade() -> None:
    op.drop_index(NAME, table_name="products")
