"""Ledger tables: accounts with TigerBeetle's four counters, immutable transfers, chain heads.

The balance rules live in the database as well as in Python: check constraints refuse any
counter that breaks an account's flags, whatever code (or stray SQL) wrote it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import BigId, UTCDateTime


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 "
            "AND credits_pending >= 0 AND credits_posted >= 0",
            name="ck_ledger_accounts_counters",
        ),
        CheckConstraint(
            "(flags & 1) = 0 OR debits_pending + debits_posted <= credits_posted",
            name="ck_ledger_accounts_debits_within_credits",
        ),
        CheckConstraint(
            "(flags & 2) = 0 OR credits_pending + credits_posted <= debits_posted",
            name="ck_ledger_accounts_credits_within_debits",
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    key: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    owner_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    )
    asset: str = Field(sa_column=Column(String(8), nullable=False))
    code: str = Field(sa_column=Column(String(24), nullable=False))
    flags: int = Field(sa_column=Column(SmallInteger, nullable=False))
    debits_pending: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    debits_posted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    credits_pending: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    credits_posted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class LedgerTransfer(SQLModel, table=True):
    """Append-only (database triggers refuse UPDATE and DELETE).  A post or void is its own
    transfer naming the pending one; the unique ``pending_id`` lets each be resolved once."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_ledger_transfers_amount"),
        CheckConstraint(
            "debit_account_id <> credit_account_id", name="ck_ledger_transfers_two_accounts"
        ),
        CheckConstraint(
            "kind IN ('posted', 'pending', 'post', 'void')", name="ck_ledger_transfers_kind"
        ),
        UniqueConstraint("chain", "chain_seq", name="uq_ledger_transfers_chain_seq"),
        Index("ix_ledger_transfers_debit", "debit_account_id", "timestamp"),
        Index("ix_ledger_transfers_credit", "credit_account_id", "timestamp"),
    )

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    # No foreign keys to the accounts: the ids come from rows the batch holds locked, accounts
    # are never deleted (a trigger refuses it), and verify checks every reference.  The two
    # per-row key checks cost a bulk insert about half its time (bench/ledger_bench.py).
    debit_account_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    credit_account_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    asset: str = Field(sa_column=Column(String(8), nullable=False))
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    pending_id: str | None = Field(
        default=None,
        sa_column=Column(String(64), ForeignKey("ledger_transfers.id"), unique=True),
    )
    expires_at: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    code: str = Field(sa_column=Column(String(32), nullable=False))
    meta: str = Field(sa_column=Column("metadata", Text, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    chain: int = Field(sa_column=Column(SmallInteger, nullable=False))
    chain_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    prev_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LedgerChain(SQLModel, table=True):
    """The head of each hash chain: its last sequence number and hash.  A transaction appends to
    one chain, holding its row from append to commit, so chains are the unit of write
    concurrency."""

    __tablename__ = "ledger_chains"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    head_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    head_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
