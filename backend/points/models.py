"""What the points rules remember beyond the ledger: streaks, milestones, referral rewards."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, ForeignKey, SmallInteger, String
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class PointsProfile(SQLModel, table=True):
    __tablename__ = "points_profiles"

    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    streak: int = 0
    """Consecutive days checked in, ending on ``last_checkin``."""
    last_checkin: date | None = Field(default=None, sa_column=Column(Date))
    checkin_days: int = 0
    first_trade_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    wallet_linked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    activated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """When this user first showed the activity that releases their referrers' rewards."""


class ReferralReward(SQLModel, table=True):
    """A referrer's share of a referee's earning: a pending ledger transfer, posted once the
    referee is active, voided if they never become so."""

    __tablename__ = "referral_rewards"

    transfer_id: str = Field(
        sa_column=Column(String(64), ForeignKey("ledger_transfers.id"), primary_key=True)
    )
    referrer_id: int = Field(sa_column=Column(ForeignKey("users.id"), nullable=False, index=True))
    referee_id: int = Field(sa_column=Column(ForeignKey("users.id"), nullable=False, index=True))
    level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
