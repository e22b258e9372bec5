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
    text,
)
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import BigId, UTCDateTime


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


class NotificationSettings(SQLModel, table=True):
    """What a user wants to hear about, and when.  No row means the defaults: every topic on
    but the opt-in ones, no digest, no quiet hours, the language Telegram reports."""

    __tablename__ = "notification_settings"
    __table_args__ = (
        CheckConstraint(
            "(quiet_start IS NULL) = (quiet_end IS NULL)", name="ck_notification_settings_quiet"
        ),
        CheckConstraint(
            "quiet_start IS NULL OR (quiet_start BETWEEN 0 AND 1439 AND quiet_end BETWEEN 0 AND"
            " 1439 AND quiet_start <> quiet_end)",
            name="ck_notification_settings_quiet_range",
        ),
    )

    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    muted: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Topics (``messages.TOPICS``) the user turned off."""
    subscribed: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
    )
    """Opt-in topics (``messages.OPT_IN_TOPICS``, off by default) the user turned on."""
    digest: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """Topics gathered into one message per digest window instead of one message each."""
    quiet_start: int | None = Field(default=None, sa_column=Column(SmallInteger))
    """Minute of the day, in ``time_zone``, when quiet hours begin (may be after the end:
    22:00 to 07:00 spans midnight)."""
    quiet_end: int | None = Field(default=None, sa_column=Column(SmallInteger))
    time_zone: str = Field(default="UTC", sa_column=Column(String(64), nullable=False))
    """An IANA name, checked against the tz database when set."""
    language: str | None = Field(default=None, sa_column=Column(String(8)))
    """Overrides the language Telegram reports; None follows Telegram."""
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
