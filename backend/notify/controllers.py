"""HTTP: a user's notification settings; the outbox as admins see it (dead letters first)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter
from msgspec import UNSET
from sqlmodel import col, select

from backend.auth.guards import admin_only
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.i18n import languages
from backend.notify import preferences
from backend.notify.models import Notification
from backend.notify.preferences import Preferences
from backend.notify.schemas import QuietHours, SettingsChange, SettingsView
from backend.users.models import User


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


class NotificationSettingsController(Controller):
    path = "/api/notifications/settings"
    tags = ["notifications"]

    @get()
    async def show(
        self,
        request: Request[User, Any, Any],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
    ) -> SettingsView:
        """Which topics notify, which are gathered into digests, quiet hours, language."""
        assert request.user.id is not None
        async with uow.read() as session:
            wanted = await preferences.load(session, request.user.id)
        return _view(wanted, settings)

    @patch()
    async def change(
        self,
        request: Request[User, Any, Any],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
        data: JSONBody[SettingsChange],
    ) -> SettingsView:
        """Change the fields given; the bot's /settings edits the same settings."""
        assert request.user.id is not None
        changes: dict[str, Any] = {}
        if data.topics is not UNSET:
            changes["topics"] = data.topics
        if data.digest is not UNSET:
            changes["digest"] = data.digest
        if data.quiet_hours is not UNSET:
            quiet = data.quiet_hours
            changes["quiet_hours"] = None if quiet is None else (quiet.start, quiet.end)
        if data.time_zone is not UNSET:
            changes["time_zone"] = data.time_zone
        if data.language is not UNSET:
            changes["language"] = data.language
        wanted = await preferences.change(uow, request.user.id, **changes)
        return _view(wanted, settings)


def _view(wanted: Preferences, settings: Settings) -> SettingsView:
    view = wanted.view()
    quiet = view["quiet_hours"]
    return SettingsView(
        topics=view["topics"],
        digest=view["digest"],
        quiet_hours=None if quiet is None else QuietHours(**quiet),
        time_zone=view["time_zone"],
        language=view["language"],
        languages=list(languages()),
        digest_minutes=round(settings.notify.digest_seconds / 60),
    )
