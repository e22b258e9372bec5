"""Queueing a notification: one row in the outbox, in the caller's transaction.

Rolled back with its cause, it is never sent; committed with it, it is delivered by a worker
(``worker.py``).  The dedupe key comes from the cause, so a retried cause queues nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, String, literal, select
from sqlmodel import col

from backend.db.engine import insert_for
from backend.db.types import UTCDateTime
from backend.db.uow import UnitOfWork
from backend.notify.messages import KINDS
from backend.notify.models import Notification, Status
from backend.users.models import User, utcnow


async def enqueue(
    uow: UnitOfWork, user_id: int, kind: str, payload: Mapping[str, Any], dedupe_key: str
) -> None:
    """Queue ``kind`` for the user, unless they blocked the bot or the key was queued before.

    One statement: the chat and language are read from the user row as it is inserted.
    """
    if kind not in KINDS:
        raise ValueError(f"no message is written for {kind!r}")
    now = utcnow()
    data = dict(payload)
    rows = select(
        col(User.id),
        col(User.telegram_id),
        literal(kind, String),
        literal(dedupe_key[:96], String),
        literal(data, JSON),
        literal(Status.PENDING.value, String),
        literal(0),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(col(User.id) == user_id, col(User.bot_blocked_at).is_(None))
    insert = insert_for(uow.session)(Notification).from_select(
        [
            "user_id",
            "chat_id",
            "kind",
            "dedupe_key",
            "payload",
            "status",
            "attempts",
            "available_at",
            "created_at",
        ],
        rows,
    )
    await uow.session.exec(insert.on_conflict_do_nothing(index_elements=["dedupe_key"]))
