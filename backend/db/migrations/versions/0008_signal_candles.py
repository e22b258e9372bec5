"""Candles for AI signals: bundled history, imported CSV files and the feed's own candles.

Prices are double-precision floats here, unlike every other table: they are analysis inputs,
never money.  The key (market, interval, time) also serves the one query, a market's candles
at an interval in time order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_candles",
        sa.Column("market", sa.String(16), primary_key=True),
        sa.Column("interval", sa.String(8), primary_key=True),
        sa.Column("time", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.CheckConstraint(
            "source IN ('bundled', 'import', 'feed')", name="ck_signal_candles_source"
        ),
        sa.CheckConstraint(
            "low > 0 AND high >= low AND open >= low AND open <= high"
            " AND close >= low AND close <= high AND volume >= 0",
            name="ck_signal_candles_ohlcv",
        ),
    )


def downgrade() -> None:
    op.drop_table("signal_candles")
