"""Withdrawals users asked for, and the transactions the operator sent to pay them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    """Recorded; the debit is on its way to the books (a crash here is settled on restart)."""
    PENDING_APPROVAL = "pending_approval"
    """Debited; above the approval threshold, waiting for an admin."""
    QUEUED = "queued"
    """Debited and approved: the next transaction the operator sends on this chain."""
    SENT = "sent"
    """A transaction is out (replaced with higher fees while it is stuck)."""
    CONFIRMED = "confirmed"
    """Paid: mined, with the chain's confirmations."""
    FAILED = "failed"
    """The vault refused it (checked before sending, or reverted): the amount is returned."""
    CANCELLED = "cancelled"
    """By the user, before it was sent: the amount is returned."""
    REJECTED = "rejected"
    """By an admin: the amount is returned."""
    REFUSED = "refused"
    """The books refused the debit (the balance was spent meanwhile): nothing moved."""


# Not sent yet: the user may still cancel.
UNSENT = (WithdrawalStatus.PENDING_APPROVAL, WithdrawalStatus.QUEUED)
# Ended without paying: the amount goes back to the user (``refunded_at`` says when it did).
RETURNED = (WithdrawalStatus.FAILED, WithdrawalStatus.CANCELLED, WithdrawalStatus.REJECTED)
# Counted against the daily limit: everything but what ended without paying.
COUNTED = (
    WithdrawalStatus.REQUESTED,
    WithdrawalStatus.PENDING_APPROVAL,
    WithdrawalStatus.QUEUED,
    WithdrawalStatus.SENT,
    WithdrawalStatus.CONFIRMED,
)


class ChainWithdrawal(SQLModel, table=True):
    """One withdrawal: the user's EIP-712 authorisation, what it debited, and where it stands.

    ``nonce_slot`` is the vault nonce while the authorisation may still be used (NULL once it
    ended unpaid): unique per (chain, address), so one wallet has one withdrawal in flight per
    chain, and the vault's sequential nonces never see a gap."""

    __tablename__ = "chain_withdrawals"
    __table_args__ = (
        UniqueConstraint("chain", "address", "nonce_slot", name="uq_chain_withdrawals_slot"),
        Index("ix_chain_withdrawals_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(
        default=None,
        sa_column=Column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    chain: str = Field(sa_column=Column(String(16), nullable=False))
    asset: str = Field(sa_column=Column(String(16), nullable=False))
    amount: int = Field(sa_column=Column(BigInteger(), nullable=False))
    """Ledger units debited (the fee included)."""
    fee: int = Field(sa_column=Column(BigInteger(), nullable=False))
    token: str = Field(sa_column=Column(String(42), nullable=False))
    """The token contract paid out (the zero address: the native coin)."""
    raw_amount: str = Field(sa_column=Column(String(80), nullable=False))
    """What the vault pays, in the token's own units (amount less fee)."""
    address: str = Field(sa_column=Column(String(42), nullable=False))
    """The recipient, EIP-55: the wallet that signed the authorisation."""
    vault_nonce: int = Field(sa_column=Column(BigInteger(), nullable=False))
    nonce_slot: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    deadline: int = Field(sa_column=Column(BigInteger(), nullable=False))
    """Unix time after which the vault refuses the authorisation."""
    signature: str = Field(sa_column=Column(String(140), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    error: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    """Why it failed (a code), when it did."""
    tx_hash: str | None = Field(default=None, sa_column=Column(String(66), nullable=True))
    """The transaction that paid it (or the latest one sent)."""
    block_number: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    approved_by: int | None = Field(default=None, sa_column=Column(Integer(), nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    refunded_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class TxStatus(StrEnum):
    PENDING = "pending"
    MINED = "mined"
    REPLACED = "replaced"
    """Another transaction with its nonce was mined (a replacement of it)."""


class ChainTx(SQLModel, table=True):
    """One signed transaction the operator sent.  Stored before it is broadcast, so a crash in
    between never loses a nonce: the same bytes are broadcast again."""

    __tablename__ = "chain_txs"
    __table_args__ = (
        UniqueConstraint("tx_hash", name="uq_chain_txs_hash"),
        Index("ix_chain_txs_sender_nonce", "chain", "sender", "nonce"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(sa_column=Column(String(16), nullable=False))
    sender: str = Field(sa_column=Column(String(42), nullable=False))
    nonce: int = Field(sa_column=Column(BigInteger(), nullable=False))
    tx_hash: str = Field(sa_column=Column(String(66), nullable=False))
    withdrawal_id: int | None = Field(
        default=None,
        sa_column=Column(ForeignKey("chain_withdrawals.id"), nullable=True, index=True),
    )
    sweep_user_id: int | None = Field(
        default=None, sa_column=Column(Integer(), nullable=True, index=True)
    )
    """A sweep of this user's deposit address (a withdrawal's transactions name the withdrawal)."""
    data: str = Field(sa_column=Column(Text(), nullable=False))
    """The call (hex), to sign again with higher fees."""
    gas: int = Field(sa_column=Column(BigInteger(), nullable=False))
    max_fee: str = Field(sa_column=Column(String(80), nullable=False))
    """Wei per gas."""
    priority_fee: str = Field(sa_column=Column(String(80), nullable=False))
    raw: str = Field(sa_column=Column(Text(), nullable=False))
    """The signed transaction (hex), to broadcast again if the node forgot it."""
    status: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
