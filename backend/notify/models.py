"""The outbox: a notification is written in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    String,
)
from sqlmodel import Field, SQLModel

from backend.db.types import BigId, UTCDateTime
from backend.users.models import utcnow


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    """Claimed by a worker until ``claimed_until``."""
    SENT = "sent"
    DEAD = "dead"
    """Gave up: retries exhausted, or Telegram refused the message itself."""
    SKIPPED = "skipped"
    """Not sent: the user blocked the bot."""


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "available_at"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'dead', 'skipped')",
            name="ck_notifications_status",
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    dedupe_key: str = Field(sa_column=Column(String(96), nullable=False, unique=True))
    """Derived from the cause: a retried cause does not queue a second message."""
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=Status.PENDING.value, sa_column=Column(String(12), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False))
    available_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_error: str | None = Field(default=None, sa_column=Column(String(300)))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
