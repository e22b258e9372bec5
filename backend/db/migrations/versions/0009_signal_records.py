"""Signals as published, with their live outcomes; simulated candles; opt-in notification topics.

* ``signal_records``: one row per signal, keyed by the candle it was made on and its horizon,
  scored (hit or miss) once the horizon has passed.
* ``signal_candles.source`` may be ``simulator``: past hours the demo's backfill made up for a
  market with too little history.  SQLite cannot change a CHECK constraint in place, so the
  table is rebuilt there (Alembic's batch copy, built from the definition below rather than
  from reflection, so no constraint is lost); PostgreSQL swaps the constraint.
* ``notification_settings.subscribed``: the opt-in topics (AI signals) a user turned on; every
  existing row starts with none, so nobody is opted in by the upgrade.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SOURCES_BEFORE = "source IN ('bundled', 'import', 'feed')"
SOURCES_AFTER = "source IN ('bundled', 'import', 'feed', 'simulator')"


def _candles(sources: str, width: int) -> sa.Table:
    """signal_candles as 0008 made it, with the given source rule and column width."""
    return sa.Table(
        "signal_candles",
        sa.MetaData(),
        sa.Column("market", sa.String(16), primary_key=True),
        sa.Column("interval", sa.String(8), primary_key=True),
        sa.Column("time", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(width), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.CheckConstraint(sources, name="ck_signal_candles_source"),
        sa.CheckConstraint(
            "low > 0 AND high >= low AND open >= low AND open <= high"
            " AND close >= low AND close <= high AND volume >= 0",
            name="ck_signal_candles_ohlcv",
        ),
    )


def _sources(sources: str, width: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "signal_candles", recreate="always", copy_from=_candles(sources, width)
        ):
            pass
        return
    op.drop_constraint("ck_signal_candles_source", "signal_candles", type_="check")
    op.alter_column("signal_candles", "source", type_=sa.String(width))
    op.create_check_constraint("ck_signal_candles_source", "signal_candles", sources)


def upgrade() -> None:
    op.create_table(
        "signal_records",
        sa.Column("market", sa.String(16), primary_key=True),
        sa.Column("interval", sa.String(8), primary_key=True),
        sa.Column("horizon", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("time", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("probability_up", sa.Double(), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("volatility", sa.Double(), nullable=False),
        sa.Column("var95", sa.Double(), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("risk_version", sa.Integer(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("backtest_hit_rate", sa.Double()),
        sa.Column("baseline", sa.String(32)),
        sa.Column("baseline_hit_rate", sa.Double()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome_up", sa.Boolean()),
        sa.Column("hit", sa.Boolean()),
        sa.Column("scored_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("direction IN ('up', 'down')", name="ck_signal_records_direction"),
        sa.CheckConstraint(
            "probability_up >= 0 AND probability_up <= 1", name="ck_signal_records_probability"
        ),
        sa.CheckConstraint("horizon > 0", name="ck_signal_records_horizon"),
    )
    _sources(SOURCES_AFTER, 16)
    op.add_column(
        "notification_settings",
        sa.Column("subscribed", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    # SQLite has dropped columns in place since 3.35 (2021); PostgreSQL always has.
    op.execute("ALTER TABLE notification_settings DROP COLUMN subscribed")
    # Made-up candles have no place under the old rule; the feed's and imports' stay.
    op.execute("DELETE FROM signal_candles WHERE source = 'simulator'")
    _sources(SOURCES_BEFORE, 8)
    op.drop_table("signal_records")
