"""On-chain deposits and the watchers' cursors.

* ``chain_deposits``: one vault ``Deposited`` log each; (chain, tx_hash, log_index) is unique,
  so a log is recorded, and credited, once whatever block holds it.
* ``chain_cursors``: per chain, the last block scanned and its hash (a changed hash is a reorg).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_deposits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("raw_amount", sa.String(80), nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credited_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_chain_deposits_log"),
    )
    op.create_index("ix_chain_deposits_user_id", "chain_deposits", ["user_id"])
    op.create_table(
        "chain_cursors",
        sa.Column("chain", sa.String(16), primary_key=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chain_cursors")
    op.drop_index("ix_chain_deposits_user_id", table_name="chain_deposits")
    op.drop_table("chain_deposits")
