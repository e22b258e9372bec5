"""Reads behind the Points tab, the bot and the moderators' views.  No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.clock import utcnow
from backend.config import PointsSettings
from backend.ledger.assets import POINTS
from backend.ledger.domain import user_account
from backend.ledger.queries import balances
from backend.ledger.service import now_micros
from backend.points.models import PointsProfile
from backend.users.models import User

# Originals only (posted and pending); a post or void is shown as its pending's outcome.
_HISTORY = """
SELECT t.id, t.debit_account_id, t.amount, t.kind, t.code, t.metadata, t.timestamp,
       t.expires_at, r.kind AS resolution, r.amount AS resolved_amount
FROM ledger_transfers t LEFT JOIN ledger_transfers r ON r.pending_id = t.id
WHERE (t.debit_account_id = :account OR t.credit_account_id = :account)
  AND t.kind IN ('posted', 'pending')
  AND (t.timestamp < :before_ts OR (t.timestamp = :before_ts AND t.id < :before_id))
ORDER BY t.timestamp DESC, t.id DESC LIMIT :limit
"""
_REFERRAL_TOTALS = """
SELECT rr.level,
       SUM(CASE WHEN t.kind = 'posted' THEN t.amount WHEN r.kind = 'post' THEN r.amount ELSE 0 END)
           AS earned,
       SUM(CASE WHEN t.kind = 'pending' AND r.id IS NULL AND t.expires_at > :now THEN t.amount
                ELSE 0 END) AS pending
FROM referral_rewards rr JOIN ledger_transfers t ON t.id = rr.transfer_id
LEFT JOIN ledger_transfers r ON r.pending_id = t.id
WHERE rr.referrer_id = :user_id GROUP BY rr.level
"""
_LEVEL2_COUNT = """
SELECT COUNT(*) FROM users u2 JOIN users u1 ON u2.referred_by_id = u1.id
WHERE u1.referred_by_id = :user_id
"""
# Referees listed on the Points tab, newest first: a phone screen shows a few dozen, and a
# referrer with thousands (the farms moderators look for) must not make the page heavy.
# The totals are counted separately.
MAX_REFEREES_SHOWN = 100


async def points_balance(session: AsyncSession, user_id: int) -> int:
    """The user's PTS balance (also their lifetime points: points cannot be spent yet, and a
    clawback takes back what should not have been earned)."""
    balance = (await balances(session, user_id))[POINTS.code]
    return balance.balance if balance else 0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: str
    at: datetime
    timestamp: int
    """Microseconds since the epoch: the exact value paging continues from."""
    amount: int
    """Signed: positive when points came in."""
    reason: str
    status: str
    """posted, pending, voided, or expired."""
    metadata: str


async def history(
    session: AsyncSession, user_id: int, *, limit: int, before: tuple[int, str] | None
) -> list[HistoryEntry]:
    account = await _account_id(await session.connection(), user_account(user_id, POINTS.code))
    if account is None:
        return []
    before_ts, before_id = before or (2**62, "")
    connection = await session.connection()
    rows = (
        await connection.execute(
            text(_HISTORY),
            {
                "account": account,
                "before_ts": before_ts,
                "before_id": before_id if before else "~",
                "limit": limit,
            },
        )
    ).all()
    now = now_micros()
    return [_entry(row, account, now) for row in rows]


def _entry(row: Any, account: int, now: int) -> HistoryEntry:
    amount = row.amount
    if row.kind == "posted" or row.resolution == "post":
        status = "posted"
        amount = row.resolved_amount or row.amount
    elif row.resolution == "void":
        status = "voided"
    elif row.expires_at is not None and row.expires_at <= now:
        status = "expired"
    else:
        status = "pending"
    sign = -1 if row.debit_account_id == account else 1
    return HistoryEntry(
        id=row.id,
        at=datetime.fromtimestamp(row.timestamp / 1_000_000, tz=UTC),
        timestamp=row.timestamp,
        amount=sign * amount,
        reason=row.code,
        status=status,
        metadata=row.metadata,
    )


async def _account_id(connection: AsyncConnection, key: str) -> int | None:
    row = (
        await connection.execute(
            text("SELECT id FROM ledger_accounts WHERE key = :key"), {"key": key}
        )
    ).first()
    return row.id if row else None


async def profile(session: AsyncSession, user_id: int) -> PointsProfile | None:
    return await session.get(PointsProfile, user_id)


@dataclass(frozen=True, slots=True)
class Referee:
    id: int
    name: str
    joined_at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class ReferralSummary:
    referees: list[Referee]
    level1_count: int
    level2_count: int
    earned: int
    pending: int
    by_level: dict[int, tuple[int, int]]
    """Level → (earned, pending)."""


async def referrals(session: AsyncSession, user_id: int) -> ReferralSummary:
    rows = (
        await session.exec(
            select(User.id, User.first_name, User.created_at, PointsProfile.activated_at)
            .join(PointsProfile, col(PointsProfile.user_id) == col(User.id), isouter=True)
            .where(col(User.referred_by_id) == user_id)
            .order_by(col(User.id).desc())
            .limit(MAX_REFEREES_SHOWN)
        )
    ).all()
    level1 = await session.scalar(
        select(func.count()).select_from(User).where(col(User.referred_by_id) == user_id)
    )
    connection = await session.connection()
    level2 = (await connection.execute(text(_LEVEL2_COUNT), {"user_id": user_id})).scalar_one()
    totals = (
        await connection.execute(text(_REFERRAL_TOTALS), {"user_id": user_id, "now": now_micros()})
    ).all()
    by_level = {row.level: (int(row.earned or 0), int(row.pending or 0)) for row in totals}
    return ReferralSummary(
        referees=[
            Referee(id=int(row[0] or 0), name=row[1], joined_at=row[2], active=row[3] is not None)
            for row in rows
        ],
        level1_count=int(level1 or 0),
        level2_count=int(level2),
        earned=sum(earned for earned, _ in by_level.values()),
        pending=sum(pending for _, pending in by_level.values()),
        by_level=by_level,
    )


@dataclass(frozen=True, slots=True)
class FlaggedReferrer:
    user_id: int
    name: str
    referees: int
    inactive: int


async def flagged_referrers(
    session: AsyncSession, settings: PointsSettings, *, limit: int = 100
) -> list[FlaggedReferrer]:
    """Referrers whose referees look like a farm: many, old enough, and mostly never active."""
    cutoff = utcnow() - timedelta(days=settings.farm_grace_days)
    referrer = col(User.referred_by_id)
    total = func.count()
    inactive = func.sum(case((col(PointsProfile.activated_at).is_(None), 1), else_=0))
    rows = (
        await session.exec(
            select(referrer, total, inactive)
            .join(PointsProfile, col(PointsProfile.user_id) == col(User.id), isouter=True)
            .where(referrer.is_not(None), col(User.created_at) < cutoff)
            .group_by(referrer)
            .having(total >= settings.farm_min_referees)
            .having(inactive >= settings.farm_inactive_share * total)
            .order_by(inactive.desc(), referrer)
            .limit(limit)
        )
    ).all()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    names = {
        row[0]: row[1]
        for row in (
            await session.exec(select(User.id, User.first_name).where(col(User.id).in_(ids)))
        )
    }
    return [
        FlaggedReferrer(int(row[0] or 0), names.get(row[0], ""), int(row[1]), int(row[2]))
        for row in rows
    ]
