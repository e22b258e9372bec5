"""Referral rewards: a referrer's share of what their referee earns, held until the referee is
active.  Builds ledger requests; the points service submits them with the award, in one batch
(one batch per transaction keeps the ledger's lock order)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from backend.config import PointsSettings
from backend.db.uow import UnitOfWork
from backend.ledger.assets import POINTS
from backend.ledger.domain import TransferKind, TransferRequest, system_account, user_account
from backend.ledger.service import derived_id
from backend.points.models import ReferralReward
from backend.points.rules import Reason, Rules

REWARDS_POOL = system_account("rewards", POINTS.code)
DAY_SECONDS = 24 * 3600

_REFERRERS = """
SELECT u1.referred_by_id AS level1, u2.referred_by_id AS level2
FROM users u1 LEFT JOIN users u2 ON u2.id = u1.referred_by_id WHERE u1.id = :user_id
"""
_OPEN_REWARDS = """
SELECT rr.transfer_id FROM referral_rewards rr
JOIN ledger_transfers t ON t.id = rr.transfer_id
WHERE rr.referee_id = :referee AND t.kind = 'pending'
  AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)
"""


@dataclass(frozen=True, slots=True)
class Share:
    request: TransferRequest
    reward: ReferralReward


async def referrers(uow: UnitOfWork, user_id: int) -> dict[int, int]:
    """Level → referrer id, for the levels this user has."""
    connection = await uow.session.connection()
    row = (await connection.execute(text(_REFERRERS), {"user_id": user_id})).first()
    if row is None:
        return {}
    return {level: referrer for level, referrer in ((1, row.level1), (2, row.level2)) if referrer}


def shares(
    settings: PointsSettings,
    award_id: str,
    referee_id: int,
    points: int,
    chain: dict[int, int],
    *,
    active: bool,
) -> list[Share]:
    """The referrers' shares of an award: posted when the referee is already active, pending
    (expiring after the hold) while they are not."""
    result = []
    for level, amount in Rules(settings).referral_shares(points):
        referrer = chain.get(level)
        if referrer is None:
            continue
        share_id = derived_id(f"ref{level}", award_id)
        request = TransferRequest(
            share_id,
            Reason.REFERRAL,
            amount,
            REWARDS_POOL,
            user_account(referrer, POINTS.code),
            POINTS.code,
            kind=TransferKind.POSTED if active else TransferKind.PENDING,
            timeout=0 if active else settings.referral_hold_days * DAY_SECONDS,
            metadata={"referee": referee_id, "level": level, "cause": award_id},
        )
        reward = ReferralReward(
            transfer_id=share_id, referrer_id=referrer, referee_id=referee_id, level=level
        )
        result.append(Share(request, reward))
    return result


async def release(uow: UnitOfWork, referee_id: int) -> list[TransferRequest]:
    """Posts for every share still waiting on this referee (submitted leniently: one that
    expired meanwhile stays refused and is voided by the sweeper)."""
    connection = await uow.session.connection()
    rows = (await connection.execute(text(_OPEN_REWARDS), {"referee": referee_id})).all()
    return [
        TransferRequest(
            derived_id("post", row.transfer_id),
            Reason.REFERRAL,
            kind=TransferKind.POST,
            pending_id=row.transfer_id,
        )
        for row in rows
    ]
