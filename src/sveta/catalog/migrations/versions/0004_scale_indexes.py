"""scale indexes: product references, filtered lists, the brand list and the stats key use indexes, not scans

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (name, table, columns or expressions). The lower() ones serve the product list's case-insensitive filters
# (catalog/browse.py); (brand, gone_at) answers the brand list from the index alone (catalog/queries.py);
# products.updated_at and images.fetched_at are in the stats cache key (catalog/stats.py).
INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ix_products_external_id", "products", ("external_id",)),
    ("ix_products_handle", "products", ("handle",)),
    ("ix_products_brand_gone_at", "products", ("brand", "gone_at")),
    ("ix_products_updated_at", "products", ("updated_at",)),
    ("ix_products_lower_category_gender", "products", ("lower(category)", "lower(gender)")),
    ("ix_products_lower_colour", "products", ("lower(colour)",)),
    ("ix_products_lower_brand", "products", ("lower(brand)",)),
    ("ix_images_fetched_at", "images", ("fetched_at",)),
)
# Prefixes of another index (uq_products_source_external, ix_products_brand_gone_at): they only cost writes, and
# PostgreSQL without statistics picked ix_products_source_id for the per-batch look-up and scanned the source.
REDUNDANT = (("ix_products_source_id", "source_id"), ("ix_products_brand", "brand"))


def upgrade() -> None:
    for name, _ in REDUNDANT:
        op.drop_index(name, table_name="products")
    for name, table, parts in INDEXES:
        op.create_index(name, table, [sa.text(p) if "(" in p else p for p in parts], unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    for name, column in REDUNDANT:
        op.create_index(name, "products", [column], unique=False)
