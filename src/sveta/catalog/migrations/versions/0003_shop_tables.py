"""shop tables: search and click events (insights), merchandising rules, Shopify pushes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "search_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("surface", sa.String(length=32), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("understood", sa.JSON(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("page", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_events")),
    )
    op.create_index(op.f("ix_search_events_at"), "search_events", ["at"], unique=False)
    op.create_table(
        "click_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("surface", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("page", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click_events")),
    )
    op.create_index(op.f("ix_click_events_at"), "click_events", ["at"], unique=False)
    op.create_index(op.f("ix_click_events_search_id"), "click_events", ["search_id"], unique=False)
    op.create_table(
        "merch_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=512), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("starts_at", TZ, nullable=True),
        sa.Column("ends_at", TZ, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merch_rules")),
    )
    op.create_table(
        "shopify_pushes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store", sa.String(length=255), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("owner_gid", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("pushed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopify_pushes")),
        sa.UniqueConstraint("store", "product_id", "key", name="uq_shopify_pushes_store_product_key"),
    )
    op.create_index(op.f("ix_shopify_pushes_product_id"), "shopify_pushes", ["product_id"], unique=False)


def downgrade() -> None:
    for table in ("shopify_pushes", "merch_rules", "click_events", "search_events"):
        op.drop_table(table)
