"""HTTP: the outbox as admins see it (dead letters first)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from sqlmodel import col, select

from backend.auth.guards import admin_only
from backend.db.uow import UnitOfWork
from backend.notify.models import Notification


class NotificationView(msgspec.Struct):
    id: int
    user_id: int
    kind: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    available_at: datetime
    sent_at: datetime | None


class NotifyAdminController(Controller):
    path = "/api/admin/notifications"
    tags = ["admin"]
    guards = [admin_only]

    @get()
    async def notifications(
        self,
        uow: NamedDependency[UnitOfWork],
        status: FromQuery[Literal["dead", "pending", "sending", "sent", "skipped"]] = "dead",
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[NotificationView]:
        """Notifications by status, newest first: `dead` ones gave up (retries exhausted, or
        Telegram refused the message), with their last error."""
        query = (
            select(Notification)
            .where(col(Notification.status) == status)
            .order_by(col(Notification.id).desc())
            .limit(limit)
        )
        async with uow.read() as session:
            rows = (await session.exec(query)).all()
        return [
            NotificationView(
                id=row.id or 0,
                user_id=row.user_id,
                kind=row.kind,
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
                available_at=row.available_at,
                sent_at=row.sent_at,
            )
            for row in rows
        ]
