"""What trading keeps in the database: orders, trades, and each market's command journal with
the book snapshots it replays from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class OrderStatus(StrEnum):
    OPEN = "open"
    """Resting on the book (perhaps partly filled)."""
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    """An IOC or market order's unfilled remainder, or a market order stopped by its funds."""


class Order(SQLModel, table=True):
    """An accepted order and where it stands.  Rejected orders are answered, not stored."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "market", "client_order_id", name="uq_orders_client_order_id"),
        Index("ix_orders_user_status", "user_id", "status", "id"),
        CheckConstraint(
            "status IN ('open', 'filled', 'cancelled', 'expired')", name="ck_orders_status"
        ),
        CheckConstraint("filled >= 0 AND filled <= qty", name="ck_orders_filled"),
        CheckConstraint("reserved >= 0", name="ck_orders_reserved"),
    )

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """Assigned by the trading writer: increasing over all markets, the book's priority."""
    user_id: int = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    market: str = Field(sa_column=Column(String(16), nullable=False))
    client_order_id: str | None = Field(default=None, sa_column=Column(String(64)))
    side: str = Field(sa_column=Column(String(4), nullable=False))
    type: str = Field(sa_column=Column(String(6), nullable=False))
    tif: str = Field(sa_column=Column(String(3), nullable=False))
    post_only: bool = Field(sa_column=Column(Boolean, nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Ticks; 0 for a market order."""
    qty: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Lots, the current total (an amend may change it)."""
    filled: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Lots filled."""
    cost: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Quote units traded (price * qty summed over fills), for the average price."""
    fee: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Quote units paid in fees."""
    status: str = Field(sa_column=Column(String(9), nullable=False))
    reserved: int = Field(sa_column=Column(BigInteger, nullable=False))
    """Ledger units of the reserved asset still held in escrow for this order; 0 once closed."""
    reserve_asset: str = Field(sa_column=Column(String(8), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class TradeRecord(SQLModel, table=True):
    __tablename__ = "trades"
    __table_args__ = (
        Index("ix_trades_market_at", "market", "at"),
        Index("ix_trades_maker_user", "maker_user_id", "id"),
        Index("ix_trades_taker_user", "taker_user_id", "id"),
        Index("ix_trades_points_due", "points_paid", "id"),
    )

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """Assigned by the trading writers, increasing over all markets (newest is highest)."""
    market: str = Field(sa_column=Column(String(16), nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    qty: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: int = Field(sa_column=Column(BigInteger, nullable=False))
    taker_side: str = Field(sa_column=Column(String(4), nullable=False))
    maker_order_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    taker_order_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    maker_user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    taker_user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    maker_fee: int = Field(sa_column=Column(BigInteger, nullable=False))
    taker_fee: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    points_paid: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    """Volume points for this trade have been awarded (done after the trade, by its own job)."""


class JournalEntry(SQLModel, table=True):
    """A command as the book received it, in order: replayed from a snapshot on restart."""

    __tablename__ = "trading_journal"

    market: str = Field(sa_column=Column(String(16), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    command: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class BookSnapshot(SQLModel, table=True):
    __tablename__ = "trading_snapshots"

    market: str = Field(sa_column=Column(String(16), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The last journaled command the snapshot includes."""
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(sa_column=Column(SmallInteger, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class TradingTerm(SQLModel, table=True):
    """The books' current term: bumped by each process that starts running them, and checked
    by every batch, so a deposed leader cannot write after its successor has started."""

    __tablename__ = "trading_terms"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    term: int = Field(sa_column=Column(BigInteger, nullable=False))
