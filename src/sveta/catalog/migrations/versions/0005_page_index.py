"""page index: a category + gender product list reads one page in catalog order, not every match

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# catalog/browse.py reads each (category, gender) pair's page in id order from this index and stops at the page's
# end; available and price_min ride along so that the list's other filters are checked without the table. It
# replaces (lower(category), lower(gender)), its prefix.
NEW = ("ix_products_category_gender_page", ("lower(category)", "lower(gender)", "id", "available", "price_min"))
OLD = ("ix_products_lower_category_gender", ("lower(category)", "lower(gender)"))


def _create(name: str, parts: tuple[str, ...]) -> None:
    op.create_index(name, "products", [sa.text(p) if "(" in p else p for p in parts], unique=False)


def upgrade() -> None:
    _create(*NEW)
    op.drop_index(OLD[0], table_name="products")


def downgrade() -> None:
    _create(*OLD)
    op.drop_index(NEW[0], table_name="products")
