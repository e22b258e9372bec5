"""Withdrawals and the operator's transactions.

* ``chain_withdrawals``: one per request, with the user's signed authorisation and its status;
  (chain, address, nonce_slot) is unique, so a wallet has one withdrawal in flight per chain.
* ``chain_txs``: every signed transaction the operator sent (withdrawals, sweeps, their
  replacements), stored before it is broadcast.
* ``deposit_addresses``: the deposit addresses users were shown, which the operator sweeps.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_withdrawals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(42), nullable=False),
        sa.Column("raw_amount", sa.String(80), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("vault_nonce", sa.BigInteger(), nullable=False),
        sa.Column("nonce_slot", sa.BigInteger(), nullable=True),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(140), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("chain", "address", "nonce_slot", name="uq_chain_withdrawals_slot"),
    )
    op.create_index("ix_chain_withdrawals_user_id", "chain_withdrawals", ["user_id"])
    op.create_index("ix_chain_withdrawals_status", "chain_withdrawals", ["status"])
    op.create_table(
        "chain_txs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column(
            "withdrawal_id", sa.Integer(), sa.ForeignKey("chain_withdrawals.id"), nullable=True
        ),
        sa.Column("sweep_user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column("max_fee", sa.String(80), nullable=False),
        sa.Column("priority_fee", sa.String(80), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tx_hash", name="uq_chain_txs_hash"),
    )
    op.create_index("ix_chain_txs_sender_nonce", "chain_txs", ["chain", "sender", "nonce"])
    op.create_index("ix_chain_txs_withdrawal_id", "chain_txs", ["withdrawal_id"])
    op.create_index("ix_chain_txs_sweep_user_id", "chain_txs", ["sweep_user_id"])
    op.create_table(
        "deposit_addresses",
        sa.Column("chain", sa.String(16), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("deposit_addresses")
    op.drop_index("ix_chain_txs_sweep_user_id", table_name="chain_txs")
    op.drop_index("ix_chain_txs_withdrawal_id", table_name="chain_txs")
    op.drop_index("ix_chain_txs_sender_nonce", table_name="chain_txs")
    op.drop_table("chain_txs")
    op.drop_index("ix_chain_withdrawals_status", table_name="chain_withdrawals")
    op.drop_index("ix_chain_withdrawals_user_id", table_name="chain_withdrawals")
    op.drop_table("chain_withdrawals")
