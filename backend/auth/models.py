"""A signed-in session: what a token names, so that it can be ended before it expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from backend.db.types import UTCDateTime


class AuthSession(SQLModel, table=True):
    __tablename__ = "auth_sessions"

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    """Random, so a session id says nothing about how many others there are."""
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """Set by logout, a role change or an admin's "sign out everywhere"; the token is dead."""
