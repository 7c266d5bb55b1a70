"""page index counts: on PostgreSQL the page index carries category and gender, so a page's total is index-only

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A product page counts its matches (up to browse.TOTAL_CAP). PostgreSQL's planner takes an index-only scan only
# when every column a query names is in the index, and it does not see that lower(category) needs no category: so
# the count read the heap block of every counted row, 21.6 of a 28.2 ms page at 100k products and most of a 141 ms
# p99 page at a million. With category and gender INCLUDEd the count reads the index alone (the visibility map
# that autovacuum keeps says which blocks need no look). SQLite plans the count from the index as it is.
# The new index is built under another name first: CREATE INDEX blocks writes only, while DROP INDEX blocks reads
# too until the migration commits, so reads wait for the drop and the rename, not for the build (3.7 s at 1M).
NAME, BUILDING = "ix_products_category_gender_page", "ix_products_category_gender_page_0007"
DDL = "CREATE INDEX {name} ON products (lower(category), lower(gender), id, available, price_min){include}"


def _recreate(include: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(DDL.format(name=BUILDING, include=include))
    # PostgreSQL keeps the statistics of lower(category) and lower(gender) with the index that computes them: a new
    # index has none until the table is analysed, and the planner would guess a page's share of the catalog. Before
    # the drop, whose lock makes reads wait; the rename keeps them.
    op.execute("ANALYZE products")
    op.execute(f"DROP INDEX {NAME}")
    op.execute(f"ALTER INDEX {BUILDING} RENAME TO {NAME}")


def upgrade() -> None:
    _recreate(" INCLUDE (category, gender)")


def downgrade() -> None:
    _recreate("")
