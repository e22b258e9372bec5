"""Linked wallets, and the single-use challenges a wallet signs to prove itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class LinkedWallet(SQLModel, table=True):
    """One wallet, one user: (kind, address) is unique, the address in its normalised form
    (TON raw ``workchain:hex``, EVM EIP-55 checksummed)."""

    __tablename__ = "wallets"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_wallets_kind_address"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    """``ton_proof`` or ``siwe``: how the wallet proved itself, which names its chain family."""
    address: str = Field(sa_column=Column(String(80), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class WalletChallenge(SQLModel, table=True):
    """A ton_proof payload or a SIWE nonce we issued: deleted when used, useless once expired."""

    __tablename__ = "wallet_challenges"

    nonce: str = Field(sa_column=Column(String(64), primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
