"""The user account: who signed in from Telegram, their role and who referred them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class Role(StrEnum):
    """Ordered from least to most privileged."""

    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_ROLE_RANK = {Role.USER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}


class User(SQLModel, table=True):
    __tablename__ = "users"
    # Never hand a deleted user's id to the next sign-up (SQLite reuses the highest id
    # otherwise): anything that still names the old id must not become the new user's.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    username: str | None = Field(default=None, max_length=64)
    first_name: str = Field(default="", max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    language_code: str | None = Field(default=None, max_length=16)
    is_premium: bool = False
    photo_url: str | None = Field(default=None, max_length=512)
    role: str = Field(default=Role.USER.value, sa_column=Column(String(16), nullable=False))
    referral_code: str = Field(sa_column=Column(String(16), unique=True, nullable=False))
    referred_by_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    )
    is_demo: bool = False
    bot_blocked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """When the user blocked the bot (a 403 from Telegram); cleared by their next /start."""
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    last_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )

    @property
    def role_enum(self) -> Role:
        return Role(self.role)
