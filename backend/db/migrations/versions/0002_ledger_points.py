"""The ledger (accounts, immutable transfers, hash-chain heads) and the points tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHAINS = 8  # backend.ledger.chain.CHAINS when this revision was written
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Transfers are never changed or removed, and accounts never removed, whatever code or stray
# SQL tries (transfers name their accounts by id without a foreign key; see the models).
_SQLITE_GUARDS = [
    """CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
       BEGIN SELECT RAISE(ABORT, 'ledger accounts are never deleted'); END""",
    """CREATE TRIGGER ledger_transfers_no_update BEFORE UPDATE ON ledger_transfers
       BEGIN SELECT RAISE(ABORT, 'ledger_transfers is append-only'); END""",
    """CREATE TRIGGER ledger_transfers_no_delete BEFORE DELETE ON ledger_transfers
       BEGIN SELECT RAISE(ABORT, 'ledger_transfers is append-only'); END""",
]
_POSTGRES_GUARDS = [
    """CREATE FUNCTION ledger_accounts_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'ledger accounts are never deleted'; END $$""",
    """CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE OR TRUNCATE ON ledger_accounts
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_accounts_no_delete()""",
    """CREATE FUNCTION ledger_transfers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'ledger_transfers is append-only'; END $$""",
    """CREATE TRIGGER ledger_transfers_append_only
       BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_transfers
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="RESTRICT")),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("code", sa.String(24), nullable=False),
        sa.Column("flags", sa.SmallInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 "
            "AND credits_pending >= 0 AND credits_posted >= 0",
            name="ck_ledger_accounts_counters",
        ),
        sa.CheckConstraint(
            "(flags & 1) = 0 OR debits_pending + debits_posted <= credits_posted",
            name="ck_ledger_accounts_debits_within_credits",
        ),
        sa.CheckConstraint(
            "(flags & 2) = 0 OR credits_pending + credits_posted <= debits_posted",
            name="ck_ledger_accounts_credits_within_debits",
        ),
    )
    op.create_index("ix_ledger_accounts_owner_id", "ledger_accounts", ["owner_id"])

    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("debit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pending_id", sa.String(64), sa.ForeignKey("ledger_transfers.id"), unique=True),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("chain", sa.SmallInteger(), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_ledger_transfers_amount"),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name="ck_ledger_transfers_two_accounts"
        ),
        sa.CheckConstraint(
            "kind IN ('posted', 'pending', 'post', 'void')", name="ck_ledger_transfers_kind"
        ),
        sa.UniqueConstraint("chain", "chain_seq", name="uq_ledger_transfers_chain_seq"),
    )
    op.create_index(
        "ix_ledger_transfers_debit", "ledger_transfers", ["debit_account_id", "timestamp"]
    )
    op.create_index(
        "ix_ledger_transfers_credit", "ledger_transfers", ["credit_account_id", "timestamp"]
    )
    op.create_index("ix_ledger_transfers_expires_at", "ledger_transfers", ["expires_at"])

    chains = op.create_table(
        "ledger_chains",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(), nullable=False),
    )
    op.bulk_insert(
        chains, [{"id": chain, "head_seq": 0, "head_hash": bytes(32)} for chain in range(CHAINS)]
    )

    op.create_table(
        "points_profiles",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("last_checkin", sa.Date()),
        sa.Column("checkin_days", sa.Integer(), nullable=False),
        sa.Column("first_trade_at", sa.DateTime(timezone=True)),
        sa.Column("wallet_linked_at", sa.DateTime(timezone=True)),
        sa.Column("activated_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "referral_rewards",
        sa.Column(
            "transfer_id",
            sa.String(64),
            sa.ForeignKey("ledger_transfers.id"),
            primary_key=True,
        ),
        sa.Column("referrer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("referee_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_referral_rewards_referrer_id", "referral_rewards", ["referrer_id"])
    op.create_index("ix_referral_rewards_referee_id", "referral_rewards", ["referee_id"])

    guards = _SQLITE_GUARDS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_no_update")
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_no_delete")
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_transfers_append_only ON ledger_transfers")
        op.execute("DROP FUNCTION IF EXISTS ledger_transfers_append_only()")
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_no_delete ON ledger_accounts")
        op.execute("DROP FUNCTION IF EXISTS ledger_accounts_no_delete()")
    op.drop_table("referral_rewards")
    op.drop_table("points_profiles")
    op.drop_table("ledger_chains")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
