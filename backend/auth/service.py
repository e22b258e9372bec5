"""Sessions in the database: opened at sign-in, looked up on every request, revoked early.

A token names a session (its ``sid`` claim) as well as a user; the session row says whether
the token still counts.  Transport-neutral: the HTTP middleware, the WebSocket and the admin
routes share these functions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TypeGuard

import structlog
from sqlalchemy import CursorResult, delete
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.auth.models import AuthSession
from backend.clock import utcnow
from backend.db.engine import Database
from backend.users.models import User

log = structlog.get_logger(__name__)

PRUNE_SECONDS = 3600.0

# users.id is a 32-bit integer on PostgreSQL: a claim beyond it names nobody (and must not
# reach the database, where it would be an overflow error instead of a 401).
MAX_USER_ID = 2**31 - 1
SESSION_ID_LENGTH = 32


def new_session_id() -> str:
    return secrets.token_hex(SESSION_ID_LENGTH // 2)


def valid_session_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == SESSION_ID_LENGTH and value.isalnum()


def user_id_of(subject: object) -> int | None:
    """The user id a token's ``sub`` names, or None when it cannot name one."""
    if not isinstance(subject, str) or not subject.isdecimal() or len(subject) > 10:
        return None
    user_id = int(subject)
    return user_id if 1 <= user_id <= MAX_USER_ID else None


async def open_session(session: AsyncSession, user_id: int, lifetime: timedelta) -> AuthSession:
    """A new session in the caller's transaction; the user's long-expired ones are dropped."""
    now = utcnow()
    await session.exec(
        delete(AuthSession).where(
            col(AuthSession.user_id) == user_id, col(AuthSession.expires_at) < now
        )
    )
    row = AuthSession(
        id=new_session_id(), user_id=user_id, created_at=now, expires_at=now + lifetime
    )
    session.add(row)
    await session.flush()
    return row


async def active_user(session: AsyncSession, user_id: int, session_id: str) -> User | None:
    """The user, if ``session_id`` is theirs, not revoked and not expired: one indexed read,
    the same round trip the user lookup of every request already cost."""
    result = await session.exec(
        select(User)
        .join(AuthSession, col(AuthSession.user_id) == col(User.id))
        .where(
            col(AuthSession.id) == session_id,
            col(User.id) == user_id,
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.expires_at) > utcnow(),
        )
    )
    return result.first()


async def revoke_session(session: AsyncSession, session_id: str) -> None:
    await session.exec(
        update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_user_sessions(
    session: AsyncSession, user_id: int, *, at: datetime | None = None
) -> int:
    """End every live session of a user; returns how many were live."""
    result = await session.exec(
        update(AuthSession)
        .where(
            col(AuthSession.user_id) == user_id,
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.expires_at) > (at or utcnow()),
        )
        .values(revoked_at=at or utcnow())
    )
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def prune_sessions(session: AsyncSession, *, before: datetime) -> int:
    """Drop sessions that expired before ``before`` (revoked or not: either way dead)."""
    result = await session.exec(delete(AuthSession).where(col(AuthSession.expires_at) < before))
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def prune_forever(db: Database) -> None:
    """Dead sessions are only kept for the lookup that refuses them, which the token's own
    expiry already does: an hourly sweep keeps the table to about a day of sign-ins."""
    while True:
        await asyncio.sleep(PRUNE_SECONDS)
        try:
            async with db.sessions() as session:
                await prune_sessions(session, before=utcnow())
                await session.commit()
        except Exception:
            log.exception("session_prune_failed")  # the next sweep catches up


async def live_sessions(session: AsyncSession, session_ids: Collection[str]) -> set[str]:
    """Which of ``session_ids`` still count (not revoked, not expired, user still there): one
    query for every socket of a process, where a query per socket would not scale."""
    if not session_ids:
        return set()
    result = await session.exec(
        select(AuthSession.id)
        .join(User, col(User.id) == col(AuthSession.user_id))
        .where(
            col(AuthSession.id).in_(list(session_ids)),
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.expires_at) > utcnow(),
        )
    )
    return set(result.all())
