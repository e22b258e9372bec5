"""Trading: orders, trades, each market's command journal and book snapshots.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("client_order_id", sa.String(64)),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("type", sa.String(6), nullable=False),
        sa.Column("tif", sa.String(3), nullable=False),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("filled", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(9), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("reserve_asset", sa.String(8), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint(
            "user_id", "market", "client_order_id", name="uq_orders_client_order_id"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'cancelled', 'expired')", name="ck_orders_status"
        ),
        sa.CheckConstraint("filled >= 0 AND filled <= qty", name="ck_orders_filled"),
        sa.CheckConstraint("reserved >= 0", name="ck_orders_reserved"),
    )
    op.create_index("ix_orders_user_status", "orders", ["user_id", "status", "id"])
    op.create_table(
        "trades",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("taker_side", sa.String(4), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("taker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("maker_user_id", sa.BigInteger(), nullable=False),
        sa.Column("taker_user_id", sa.BigInteger(), nullable=False),
        sa.Column("maker_fee", sa.BigInteger(), nullable=False),
        sa.Column("taker_fee", sa.BigInteger(), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("points_paid", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_trades_market_at", "trades", ["market", "at"])
    op.create_index("ix_trades_maker_user", "trades", ["maker_user_id", "id"])
    op.create_index("ix_trades_taker_user", "trades", ["taker_user_id", "id"])
    op.create_index("ix_trades_points_due", "trades", ["points_paid", "id"])
    op.create_table(
        "trading_journal",
        sa.Column("market", sa.String(16), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("command", sa.JSON(), nullable=False),
    )
    op.create_table(
        "trading_snapshots",
        sa.Column("market", sa.String(16), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trading_snapshots")
    op.drop_table("trading_journal")
    op.drop_table("trades")
    op.drop_table("orders")
