"""Delivers the outbox: claim due rows, send each through the bot within Telegram's limits,
record the outcome.

Several workers may run at once (processes or machines): a claim takes rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer), and marks them ``sending``
until a lease runs out.  A row is marked ``sent`` right after Telegram accepts it; if the worker
dies between the two, the lease expires and the row is sent again: delivery is at least once,
with a duplicate only in that window (``NOTIFY_LEASE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import structlog
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from sqlalchemy import or_, select, update
from sqlmodel import col

from backend.config import Settings
from backend.db.engine import Database
from backend.notify.limiter import DeliveryLimiter
from backend.notify.messages import button_label, render
from backend.notify.models import Notification, Status
from backend.users.models import User, utcnow

log = structlog.get_logger(__name__)

# An idle worker looks for due rows this often; a busy one claims again as soon as it drains.
POLL_SECONDS = 0.5


class NotificationWorker:
    def __init__(
        self, db: Database, bot: Bot, limiter: DeliveryLimiter, settings: Settings
    ) -> None:
        self.db = db
        self.bot = bot
        self.limiter = limiter
        self.settings = settings
        self.notify = settings.notify
        self._slots = asyncio.Semaphore(self.notify.concurrency)
        # Users found to have blocked the bot during the current batch: their other claimed
        # rows are skipped, not sent into a 403.
        self._blocked: set[int] = set()

    async def run(self) -> None:
        while True:
            try:
                delivered = await self.run_once()
            except Exception:
                log.exception("notify_claim_failed")
                delivered = 0
            if not delivered:
                await asyncio.sleep(POLL_SECONDS)

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many rows were handled."""
        claimed = await self.claim(self.notify.concurrency * 2)
        if not claimed:
            return 0
        users = await self._users({row["user_id"] for row in claimed})
        self._blocked.clear()
        await asyncio.gather(*(self._deliver(row, users.get(row["user_id"])) for row in claimed))
        return len(claimed)

    async def claim(self, limit: int) -> list[dict[str, Any]]:
        now = utcnow()
        table = Notification.__table__  # type: ignore[attr-defined]
        due = (
            select(table.c.id)
            .where(
                or_(
                    (table.c.status == Status.PENDING.value) & (table.c.available_at <= now),
                    (table.c.status == Status.SENDING.value) & (table.c.claimed_until < now),
                )
            )
            .order_by(table.c.available_at, table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        lease = now + timedelta(seconds=self.notify.lease_seconds)
        statement = (
            update(table)
            .where(table.c.id.in_(due.scalar_subquery()))
            .values(status=Status.SENDING.value, claimed_until=lease)
            .returning(
                table.c.id,
                table.c.user_id,
                table.c.chat_id,
                table.c.kind,
                table.c.payload,
                table.c.attempts,
            )
        )
        async with self.db.sessions() as session:
            rows = (await session.exec(statement)).mappings().all()
            await session.commit()
        return [dict(row) for row in rows]

    async def _users(self, ids: set[int]) -> dict[int, Any]:
        query = select(col(User.id), col(User.language_code), col(User.bot_blocked_at))
        async with self.db.reads() as session:
            connection = await session.connection()
            result = await connection.execute(query.where(col(User.id).in_(ids)))
            return {row.id: row for row in result}

    async def _deliver(self, row: dict[str, Any], user: Any) -> None:
        async with self._slots:
            blocked = user is None or user.bot_blocked_at is not None
            if blocked or row["user_id"] in self._blocked:
                await self._finish(row["id"], Status.SKIPPED, error="the user blocked the bot")
                return
            try:
                text = render(row["kind"], row["payload"], user.language_code)
            except (KeyError, ValueError, TypeError) as exc:
                await self._finish(row["id"], Status.DEAD, error=f"cannot render: {exc!r}")
                return
            # The limiter says how long until a slot may be free; there is no event to await.
            while (wait := await self.limiter.acquire(row["chat_id"])) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            try:
                message = await self.bot.send_message(
                    row["chat_id"], text, reply_markup=self._button(user.language_code)
                )
            except TelegramRetryAfter as exc:
                # Telegram says when: honour it exactly, and it does not count as a failure.
                await self._retry(row, exc.retry_after, str(exc), count=False)
            except TelegramForbiddenError as exc:
                await self._block(row, str(exc))
            except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
                await self._retry(row, self._backoff(row["attempts"] + 1), str(exc), count=True)
            except TelegramBadRequest as exc:
                await self._finish(row["id"], Status.DEAD, error=str(exc))
            else:
                await self._finish(row["id"], Status.SENT, message_id=message.message_id)

    def _button(self, language: str | None) -> InlineKeyboardMarkup:
        url = self.settings.app.base_url + "/"
        button = InlineKeyboardButton(text=button_label(language), web_app=WebAppInfo(url=url))
        return InlineKeyboardMarkup(inline_keyboard=[[button]])

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with full jitter (so retries from many rows spread out)."""
        ceiling = min(
            self.notify.backoff_max_seconds, self.notify.backoff_seconds * 2 ** (attempt - 1)
        )
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - spreading load, not a secret

    async def _retry(self, row: dict[str, Any], delay: float, error: str, *, count: bool) -> None:
        attempts = row["attempts"] + (1 if count else 0)
        if attempts >= self.notify.max_attempts:
            await self._finish(row["id"], Status.DEAD, error=error, attempts=attempts)
            return
        await self._update(
            row["id"],
            status=Status.PENDING.value,
            attempts=attempts,
            available_at=utcnow() + timedelta(seconds=delay),
            claimed_until=None,
            last_error=error[:300],
        )

    async def _block(self, row: dict[str, Any], error: str) -> None:
        """Stop notifying this user (their next /start clears the mark)."""
        self._blocked.add(row["user_id"])
        table = Notification.__table__  # type: ignore[attr-defined]
        async with self.db.sessions() as session:
            await session.exec(
                update(User).where(col(User.id) == row["user_id"]).values(bot_blocked_at=utcnow())
            )
            await session.exec(
                update(table)
                .where(
                    table.c.user_id == row["user_id"],
                    table.c.status.in_([Status.PENDING.value, Status.SENDING.value]),
                )
                .values(status=Status.SKIPPED.value, claimed_until=None, last_error=error[:300])
            )
            await session.commit()

    async def _finish(
        self,
        notification_id: int,
        status: Status,
        *,
        error: str | None = None,
        message_id: int | None = None,
        attempts: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "claimed_until": None}
        if status is Status.SENT:
            values |= {"sent_at": utcnow(), "message_id": message_id}
        if error is not None:
            values["last_error"] = error[:300]
        if attempts is not None:
            values["attempts"] = attempts
        await self._update(notification_id, **values)

    async def _update(self, notification_id: int, **values: Any) -> None:
        table = Notification.__table__  # type: ignore[attr-defined]
        async with self.db.sessions() as session:
            # Only while still ours: a row whose lease ran out may belong to another worker now.
            await session.exec(
                update(table)
                .where(table.c.id == notification_id, table.c.status == Status.SENDING.value)
                .values(**values)
            )
            await session.commit()
