"""Linked wallets and the single-use challenges wallets sign.

* ``wallets``: a TON or EVM wallet linked to a user; (kind, address) is unique, so a wallet
  belongs to one user.
* ``wallet_challenges``: ton_proof payloads and SIWE nonces we issued, deleted when used.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "address", name="uq_wallets_kind_address"),
    )
    op.create_index("ix_wallets_user_id", "wallets", ["user_id"])
    op.create_table(
        "wallet_challenges",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_wallet_challenges_expires_at", "wallet_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_wallet_challenges_expires_at", table_name="wallet_challenges")
    op.drop_table("wallet_challenges")
    op.drop_index("ix_wallets_user_id", table_name="wallets")
    op.drop_table("wallets")
