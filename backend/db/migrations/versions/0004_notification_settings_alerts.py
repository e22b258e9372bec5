"""Per-user notification settings and price alerts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("muted", sa.JSON(), nullable=False),
        sa.Column("digest", sa.JSON(), nullable=False),
        sa.Column("quiet_start", sa.SmallInteger()),
        sa.Column("quiet_end", sa.SmallInteger()),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(quiet_start IS NULL) = (quiet_end IS NULL)", name="ck_notification_settings_quiet"
        ),
        sa.CheckConstraint(
            "quiet_start IS NULL OR (quiet_start BETWEEN 0 AND 1439 AND quiet_end BETWEEN 0 AND"
            " 1439 AND quiet_start <> quiet_end)",
            name="ck_notification_settings_quiet_range",
        ),
    )
    op.create_table(
        "price_alerts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(5), nullable=False),
        sa.Column("price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        sa.Column("fired_price_ticks", sa.BigInteger()),
        sa.CheckConstraint("direction IN ('above', 'below')", name="ck_price_alerts_direction"),
        sa.CheckConstraint(
            "status IN ('active', 'fired', 'cancelled')", name="ck_price_alerts_status"
        ),
        sa.CheckConstraint("price_ticks > 0", name="ck_price_alerts_price"),
    )
    op.create_index("ix_price_alerts_user_id", "price_alerts", ["user_id"])
    op.create_index(
        "ix_price_alerts_watch", "price_alerts", ["market", "status", "direction", "price_ticks"]
    )


def downgrade() -> None:
    op.drop_table("price_alerts")
    op.drop_table("notification_settings")
