"""On-chain deposits as the watchers saw them, and how far each watcher has read its chain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class DepositStatus(StrEnum):
    SEEN = "seen"
    """In a block, not yet confirmed enough to credit."""
    CREDITED = "credited"
    """In the user's balance (a ledger transfer from the chain's custody account)."""
    DROPPED = "dropped"
    """Its block left the chain (a reorg) before it was credited; back to ``seen`` if the
    same log turns up in a new block."""
    BELOW_MINIMUM = "below_minimum"
    """Smaller than the chain's minimum: kept on record, never credited."""
    UNKNOWN_USER = "unknown_user"
    """Sent to a user id that is no user of ours: kept on record for support, not credited."""


class ChainDeposit(SQLModel, table=True):
    """One vault ``Deposited`` log; (chain, tx_hash, log_index) names it whatever block holds it."""

    __tablename__ = "chain_deposits"
    __table_args__ = (
        UniqueConstraint("chain", "tx_hash", "log_index", name="uq_chain_deposits_log"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(sa_column=Column(String(16), nullable=False))
    tx_hash: str = Field(sa_column=Column(String(66), nullable=False))
    log_index: int = Field(sa_column=Column(Integer(), nullable=False))
    user_id: int | None = Field(
        default=None,
        sa_column=Column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    """None when the vault's user id names no user of ours."""
    asset: str = Field(sa_column=Column(String(16), nullable=False))
    amount: int = Field(sa_column=Column(BigInteger(), nullable=False))
    """Ledger units (the token's own amount scaled to the asset's ledger scale, rounded down)."""
    raw_amount: str = Field(sa_column=Column(String(80), nullable=False))
    """The token's own units, as the log says (a uint256: text, not a number column)."""
    sender: str = Field(sa_column=Column(String(42), nullable=False))
    block_number: int = Field(sa_column=Column(BigInteger(), nullable=False))
    block_hash: str = Field(sa_column=Column(String(66), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    credited_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class ChainCursor(SQLModel, table=True):
    """The last block a chain's watcher scanned: where it resumes, and the hash that tells it
    whether that block is still on the chain."""

    __tablename__ = "chain_cursors"

    chain: str = Field(sa_column=Column(String(16), primary_key=True))
    block_number: int = Field(sa_column=Column(BigInteger(), nullable=False))
    block_hash: str = Field(sa_column=Column(String(66), nullable=False))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class DepositAddress(SQLModel, table=True):
    """A deposit address a user was shown: the forwarders the operator watches and sweeps into
    the vault (funds sent there are credited once swept)."""

    __tablename__ = "deposit_addresses"

    chain: str = Field(sa_column=Column(String(16), primary_key=True))
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    address: str = Field(sa_column=Column(String(42), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    swept_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
