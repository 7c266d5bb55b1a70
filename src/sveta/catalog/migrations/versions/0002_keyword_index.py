"""keyword index: product_keywords (SQLite FTS5 / PostgreSQL tsvector + GIN), filled from existing products

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from alembic import op

from sveta.catalog.keyword_index import rebuild_keywords

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The fields are sveta.catalog.keyword_index.FIELDS: heading, kind, traits, about (highest weight first).
SQLITE = (
    "CREATE VIRTUAL TABLE product_keywords USING fts5("
    "heading, kind, traits, about, tokenize = 'porter unicode61 remove_diacritics 2')"
)
POSTGRES = (
    "CREATE TABLE product_keywords ("
    "product_id INTEGER NOT NULL, document TSVECTOR NOT NULL, "
    "CONSTRAINT pk_product_keywords PRIMARY KEY (product_id), "
    "CONSTRAINT fk_product_keywords_product_id_products FOREIGN KEY (product_id) "
    "REFERENCES products (id) ON DELETE CASCADE)",
    "CREATE INDEX ix_product_keywords_document ON product_keywords USING GIN (document)",
)


def upgrade() -> None:
    bind = op.get_bind()
    for statement in POSTGRES if bind.dialect.name == "postgresql" else (SQLITE,):
        op.execute(statement)
    rebuild_keywords(bind)  # an existing catalog's products are searchable right after the upgrade


def downgrade() -> None:
    op.execute("DROP TABLE product_keywords")
