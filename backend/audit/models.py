"""The audit log: append-only, enforced by database triggers (see the initial migration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(UTCDateTime(), nullable=False, index=True),
    )
    actor_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    )
    action: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    target: str = Field(default="", max_length=128)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
