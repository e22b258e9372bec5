"""A price alert: a threshold on one market that fires once, then stays as a record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import BigId, UTCDateTime


class Direction(StrEnum):
    ABOVE = "above"
    """Fires when the price rises to the threshold or beyond."""
    BELOW = "below"


class AlertStatus(StrEnum):
    ACTIVE = "active"
    FIRED = "fired"
    CANCELLED = "cancelled"


class PriceAlert(SQLModel, table=True):
    __tablename__ = "price_alerts"
    __table_args__ = (
        # The watcher's question: which active alerts on this market has the price crossed?
        Index("ix_price_alerts_watch", "market", "status", "direction", "price_ticks"),
        CheckConstraint("direction IN ('above', 'below')", name="ck_price_alerts_direction"),
        CheckConstraint(
            "status IN ('active', 'fired', 'cancelled')", name="ck_price_alerts_status"
        ),
        CheckConstraint("price_ticks > 0", name="ck_price_alerts_price"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    market: str = Field(sa_column=Column(String(16), nullable=False))
    direction: str = Field(sa_column=Column(String(5), nullable=False))
    price_ticks: int = Field(sa_column=Column(BigInteger, nullable=False))
    """The threshold in the market's ticks: integers, like every price in the domain."""
    status: str = Field(
        default=AlertStatus.ACTIVE.value, sa_column=Column(String(10), nullable=False)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    fired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    fired_price_ticks: int | None = Field(default=None, sa_column=Column(BigInteger))
    """The price that crossed the threshold."""
