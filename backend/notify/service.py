"""Queueing a notification: one row in the outbox, in the caller's transaction.

Rolled back with its cause, it is never sent; committed with it, it is delivered by a worker
(``worker.py``).  The dedupe key comes from the cause, so a retried cause queues nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, String, bindparam, literal, select
from sqlmodel import col

from backend.clock import utcnow
from backend.db.engine import insert_for
from backend.db.types import UTCDateTime
from backend.db.uow import UnitOfWork
from backend.notify.messages import KINDS
from backend.notify.models import Notification, Status
from backend.users.models import User


@dataclass(frozen=True, slots=True)
class Notice:
    user_id: int
    kind: str
    payload: Mapping[str, Any]
    dedupe_key: str


async def enqueue(
    uow: UnitOfWork, user_id: int, kind: str, payload: Mapping[str, Any], dedupe_key: str
) -> None:
    """Queue ``kind`` for the user, unless they blocked the bot or the key was queued before."""
    await enqueue_many(uow, [Notice(user_id, kind, payload, dedupe_key)])


async def enqueue_many(uow: UnitOfWork, notices: Sequence[Notice]) -> None:
    """Queue several notifications with one statement (executed once per notice, in a batch).

    The chat is read from the user row as each is inserted; blocked users get nothing.
    """
    if not notices:
        return
    for notice in notices:
        if notice.kind not in KINDS:
            raise ValueError(f"no message is written for {notice.kind!r}")
    now = utcnow()
    rows = select(
        col(User.id),
        col(User.telegram_id),
        bindparam("kind", type_=String),
        bindparam("dedupe_key", type_=String),
        bindparam("payload", type_=JSON),
        literal(Status.PENDING.value, String),
        literal(0),
        bindparam("now", type_=UTCDateTime()),
        bindparam("now", type_=UTCDateTime()),
    ).where(col(User.id) == bindparam("user_id"), col(User.bot_blocked_at).is_(None))
    table = Notification.__table__  # type: ignore[attr-defined]
    insert = insert_for(uow.session)(table).from_select(
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
    params = [
        {
            "user_id": notice.user_id,
            "kind": notice.kind,
            "dedupe_key": notice.dedupe_key[:96],
            "payload": dict(notice.payload),
            "now": now,
        }
        for notice in notices
    ]
    statement = insert.on_conflict_do_nothing(index_elements=["dedupe_key"])
    # Core, not the ORM session: a list of parameters is an executemany there.
    connection = await uow.session.connection()
    await connection.execute(statement, params)
