"""Delivers the outbox: claim due rows, send each through the bot within Telegram's limits,
record the outcome.

Several workers may run at once (processes or machines): a claim takes rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer), and marks them ``sending``
until a lease runs out.  A row is marked ``sent`` right after Telegram accepts it; if the worker
dies between the two, the lease expires and the row is sent again: delivery is at least once,
with a duplicate only in that window (``NOTIFY_LEASE_SECONDS``).

The user's settings apply at delivery, so a change made after a row was queued still counts:
a muted topic is skipped, quiet hours defer the row to their end, and a topic in digest mode
waits ``NOTIFY_DIGEST_SECONDS`` from its oldest row, then goes out as one message for every
row of that topic the user has waiting.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

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
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, case, or_, select, update
from sqlmodel import col

from backend.clock import utcnow
from backend.config import Settings
from backend.db.engine import Database
from backend.i18n import Translator
from backend.notify.limiter import DeliveryLimiter, limiter_for
from backend.notify.messages import KINDS, button_label, render, render_digest
from backend.notify.models import Notification, Status
from backend.notify.preferences import DEFAULT, Preferences, load_many
from backend.users.models import User

log = structlog.get_logger(__name__)

# An idle worker looks for due rows this often; a busy one claims again as soon as it drains.
POLL_SECONDS = 0.5
_TABLE = Notification.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Delivery:
    """One message to send: a single row, or a digest of one user's rows of one topic."""

    rows: list[dict[str, Any]]
    user: Any
    preferences: Preferences
    topic: str | None = None
    """Set for a digest."""

    @property
    def ids(self) -> list[int]:
        return [row["id"] for row in self.rows]


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
        users, preferences = await self._recipients({row["user_id"] for row in claimed})
        self._blocked.clear()
        deliveries = self._group(claimed, users, preferences)
        await asyncio.gather(*(self._deliver(delivery) for delivery in deliveries))
        return len(claimed)

    async def claim(self, limit: int) -> list[dict[str, Any]]:
        now = utcnow()
        due = or_(
            (_TABLE.c.status == Status.PENDING.value) & (_TABLE.c.available_at <= now),
            (_TABLE.c.status == Status.SENDING.value) & (_TABLE.c.claimed_until < now),
        )
        return await self._claim(due, limit)

    async def _claim(self, condition: ColumnElement[bool], limit: int) -> list[dict[str, Any]]:
        """Mark matching rows ``sending`` under a lease; rows another worker holds are passed
        over, not waited for."""
        now = utcnow()
        chosen = (
            select(_TABLE.c.id)
            .where(condition)
            .order_by(_TABLE.c.available_at, _TABLE.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        lease = now + timedelta(seconds=self.notify.lease_seconds)
        statement = (
            update(_TABLE)
            .where(_TABLE.c.id.in_(chosen.scalar_subquery()))
            .values(status=Status.SENDING.value, claimed_until=lease)
            .returning(
                _TABLE.c.id,
                _TABLE.c.user_id,
                _TABLE.c.chat_id,
                _TABLE.c.kind,
                _TABLE.c.payload,
                _TABLE.c.attempts,
                _TABLE.c.created_at,
            )
        )
        async with self.db.sessions() as session:
            rows = (await session.exec(statement)).mappings().all()
            await session.commit()
        return sorted((dict(row) for row in rows), key=lambda row: row["id"])

    async def _recipients(self, ids: set[int]) -> tuple[dict[int, Any], dict[int, Preferences]]:
        query = select(col(User.id), col(User.language_code), col(User.bot_blocked_at))
        async with self.db.reads() as session:
            connection = await session.connection()
            result = await connection.execute(query.where(col(User.id).in_(ids)))
            users = {row.id: row for row in result}
            preferences = await load_many(session, ids)
        return users, preferences

    def _group(
        self,
        rows: list[dict[str, Any]],
        users: dict[int, Any],
        preferences: dict[int, Preferences],
    ) -> list[Delivery]:
        """One delivery per row, except that a user's rows of a digest topic go together."""
        deliveries: list[Delivery] = []
        digests: dict[tuple[int, str], Delivery] = {}
        for row in rows:
            user_id = row["user_id"]
            wanted = preferences.get(user_id, DEFAULT)
            kind = KINDS.get(row["kind"])
            if kind is None or not wanted.digests(row["kind"]):
                deliveries.append(Delivery([row], users.get(user_id), wanted))
                continue
            key = (user_id, kind.topic)
            if key in digests:
                digests[key].rows.append(row)
            else:
                digests[key] = Delivery([row], users.get(user_id), wanted, topic=kind.topic)
                deliveries.append(digests[key])
        return deliveries

    async def _deliver(self, delivery: Delivery) -> None:
        async with self._slots:
            first, user = delivery.rows[0], delivery.user
            if user is None or user.bot_blocked_at is not None or first["user_id"] in self._blocked:
                await self._finish(delivery.ids, Status.SKIPPED, error="the user blocked the bot")
                return
            preferences = delivery.preferences
            if first["kind"] in KINDS and not preferences.wants(first["kind"]):
                await self._finish(delivery.ids, Status.SKIPPED, error="muted by the user")
                return
            now = utcnow()
            if (quiet_until := preferences.quiet_until(now)) is not None:
                await self._defer(delivery.ids, quiet_until)
                return
            if delivery.topic is not None:
                # The oldest row waits out the window; then every waiting row goes with it.
                due = first["created_at"] + timedelta(seconds=self.notify.digest_seconds)
                if due > now:
                    await self._defer(delivery.ids, due)
                    return
                delivery.rows += await self._gather(delivery)
            t = Translator(preferences.locale(user.language_code))
            try:
                text = self._text(delivery, t)
            except (KeyError, ValueError, TypeError) as exc:
                await self._finish(delivery.ids, Status.DEAD, error=f"cannot render: {exc!r}")
                return
            await self._send(delivery, text, t)

    def _text(self, delivery: Delivery, t: Translator) -> str:
        if delivery.topic is not None and len(delivery.rows) > 1:
            items = [(row["kind"], row["payload"]) for row in delivery.rows]
            return render_digest(delivery.topic, items, t)
        first = delivery.rows[0]
        return render(first["kind"], first["payload"], t)

    async def _gather(self, delivery: Delivery) -> list[dict[str, Any]]:
        """Claim the user's other waiting rows of the digest's topic, deferred ones included."""
        assert delivery.topic is not None
        kinds = [name for name, kind in KINDS.items() if kind.topic == delivery.topic]
        now = utcnow()
        waiting = (
            (_TABLE.c.user_id == delivery.rows[0]["user_id"])
            & _TABLE.c.kind.in_(kinds)
            & _TABLE.c.id.not_in(delivery.ids)
            & or_(
                _TABLE.c.status == Status.PENDING.value,
                (_TABLE.c.status == Status.SENDING.value) & (_TABLE.c.claimed_until < now),
            )
        )
        return await self._claim(waiting, self.notify.digest_max_rows)

    async def _send(self, delivery: Delivery, text: str, t: Translator) -> None:
        first = delivery.rows[0]
        # The limiter says how long until a slot may be free; there is no event to await.
        while (wait := await self.limiter.acquire(first["chat_id"])) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        try:
            message = await self.bot.send_message(
                first["chat_id"], text, reply_markup=self._button(first["kind"], t)
            )
        except TelegramRetryAfter as exc:
            # Telegram says when: honour it exactly, and it does not count as a failure.
            await self._retry(delivery.ids, exc.retry_after, str(exc), count=False)
        except TelegramForbiddenError as exc:
            await self._block(first["user_id"], str(exc))
        except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
            attempt = max(row["attempts"] for row in delivery.rows) + 1
            await self._retry(delivery.ids, self._backoff(attempt), str(exc), count=True)
        except TelegramBadRequest as exc:
            await self._finish(delivery.ids, Status.DEAD, error=str(exc))
        else:
            await self._finish(delivery.ids, Status.SENT, message_id=message.message_id)

    def _button(self, kind: str, t: Translator) -> InlineKeyboardMarkup:
        """Opens the mini-app on the tab the message is about."""
        page = KINDS[kind].page
        url = f"{self.settings.app.base_url}/?{urlencode({'tab': page})}"
        button = InlineKeyboardButton(text=button_label(t), web_app=WebAppInfo(url=url))
        return InlineKeyboardMarkup(inline_keyboard=[[button]])

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with full jitter (so retries from many rows spread out)."""
        ceiling = min(
            self.notify.backoff_max_seconds, self.notify.backoff_seconds * 2 ** (attempt - 1)
        )
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - spreading load, not a secret

    async def _retry(self, ids: list[int], delay: float, error: str, *, count: bool) -> None:
        """Back to pending after ``delay``; a counted failure that uses the last attempt is
        dead-lettered instead."""
        attempts = _TABLE.c.attempts + (1 if count else 0)
        await self._update(
            ids,
            status=case(
                (attempts >= self.notify.max_attempts, Status.DEAD.value),
                else_=Status.PENDING.value,
            ),
            attempts=attempts,
            available_at=utcnow() + timedelta(seconds=delay),
            claimed_until=None,
            last_error=error[:300],
        )

    async def _defer(self, ids: list[int], until: datetime) -> None:
        """Not now, and not a failure: quiet hours, or a digest still gathering."""
        await self._update(ids, status=Status.PENDING.value, available_at=until, claimed_until=None)

    async def _block(self, user_id: int, error: str) -> None:
        """Stop notifying this user (their next /start clears the mark)."""
        self._blocked.add(user_id)
        async with self.db.sessions() as session:
            await session.exec(
                update(User).where(col(User.id) == user_id).values(bot_blocked_at=utcnow())
            )
            await session.exec(
                update(_TABLE)
                .where(
                    _TABLE.c.user_id == user_id,
                    _TABLE.c.status.in_([Status.PENDING.value, Status.SENDING.value]),
                )
                .values(status=Status.SKIPPED.value, claimed_until=None, last_error=error[:300])
            )
            await session.commit()

    async def _finish(
        self,
        ids: list[int],
        status: Status,
        *,
        error: str | None = None,
        message_id: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "claimed_until": None}
        if status is Status.SENT:
            values |= {"sent_at": utcnow(), "message_id": message_id}
        if error is not None:
            values["last_error"] = error[:300]
        await self._update(ids, **values)

    async def _update(self, ids: list[int], **values: Any) -> None:
        async with self.db.sessions() as session:
            # Only while still ours: a row whose lease ran out may belong to another worker now.
            await session.exec(
                update(_TABLE)
                .where(_TABLE.c.id.in_(ids), _TABLE.c.status == Status.SENDING.value)
                .values(**values)
            )
            await session.commit()


def notifier_for(
    db: Database, bot: Bot, redis: Redis | None, settings: Settings
) -> NotificationWorker:
    """The outbox's sender; with Redis, every process that sends shares the rate limits."""
    limiter = limiter_for(
        redis,
        settings.redis.key_prefix,
        settings.notify.per_second,
        settings.notify.per_chat_per_second,
    )
    return NotificationWorker(db, bot, limiter, settings)
