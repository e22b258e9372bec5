"""Points: awards from the rewards pool, daily check-in, referral shares, grants and clawbacks.

Transport-neutral: REST, the bot and the trading engine call these.  Every award is one ledger
submit whose transfer ids derive from the cause, so a retried cause never pays twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from backend.audit.service import AuditContext, record
from backend.config import PointsSettings
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest, Forbidden
from backend.hub.hub import Hub
from backend.ledger.assets import POINTS
from backend.ledger.domain import (
    Outcome,
    TransferKind,
    TransferRequest,
    system_account,
    user_account,
)
from backend.ledger.service import Ledger, derived_id
from backend.points.models import PointsProfile, ReferralReward
from backend.points.rules import Reason, Rules
from backend.users.models import Role, User
from backend.users.service import get_user

log = structlog.get_logger(__name__)

REWARDS_POOL = system_account("rewards", POINTS.code)
DAY_SECONDS = 24 * 3600

_REFERRERS = """
SELECT u1.referred_by_id AS level1, u2.referred_by_id AS level2
FROM users u1 LEFT JOIN users u2 ON u2.id = u1.referred_by_id WHERE u1.id = :user_id
"""
_OPEN_REFERRAL_REWARDS = """
SELECT rr.transfer_id FROM referral_rewards rr
JOIN ledger_transfers t ON t.id = rr.transfer_id
WHERE rr.referee_id = :referee AND t.kind = 'pending'
  AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)
"""


@dataclass(frozen=True, slots=True)
class CheckinResult:
    checked_in: bool
    """False when the user had already checked in today."""
    points: int
    streak: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    transfer_id: str
    user_id: int
    amount: int
    repeated: bool
    """The same idempotency key was used before: nothing new was recorded."""


def today_utc() -> date:
    """Check-in days are UTC days (a user's own time zone comes with notification settings)."""
    return datetime.now(UTC).date()


class Points:
    def __init__(self, ledger: Ledger, settings: PointsSettings, hub: Hub | None = None) -> None:
        self.ledger = ledger
        self.settings = settings
        self.rules = Rules(settings)
        self.hub = hub

    async def award(
        self,
        uow: UnitOfWork,
        user_id: int,
        points: int,
        reason: str,
        cause: str,
        *,
        metadata: Mapping[str, str | int | bool] | None = None,
    ) -> bool:
        """Pay ``points`` for ``cause`` from the rewards pool, with the referrers' shares.

        Returns False when this cause was paid before.  A referrer's share is a pending transfer
        until the referee is active, then a posted one.
        """
        if points <= 0:
            return False
        award_id = derived_id(reason, cause)
        requests = [
            TransferRequest(
                award_id,
                reason,
                points,
                REWARDS_POOL,
                user_account(user_id, POINTS.code),
                POINTS.code,
                metadata=metadata or {},
            )
        ]
        rewards: list[ReferralReward] = []
        if reason in Reason.SHARED:
            referrers = await self._referrers(uow, user_id)
            if referrers:
                # The referee's profile row is the lock that orders this award against their
                # activation: a share is either created after it (posted) or found by it.
                profile = await self.lock_profile(uow, user_id)
                active = profile.activated_at is not None
                for level, share in self.rules.referral_shares(points):
                    referrer = referrers.get(level)
                    if referrer is None:
                        continue
                    share_id = derived_id(f"ref{level}", award_id)
                    requests.append(
                        TransferRequest(
                            share_id,
                            Reason.REFERRAL,
                            share,
                            REWARDS_POOL,
                            user_account(referrer, POINTS.code),
                            POINTS.code,
                            kind=TransferKind.POSTED if active else TransferKind.PENDING,
                            timeout=0 if active else self.settings.referral_hold_days * DAY_SECONDS,
                            metadata={"referee": user_id, "level": level, "cause": award_id},
                        )
                    )
                    rewards.append(
                        ReferralReward(
                            transfer_id=share_id,
                            referrer_id=referrer,
                            referee_id=user_id,
                            level=level,
                        )
                    )
        submitted = await self.ledger.submit(uow, requests)
        if submitted.outcomes[0] is not Outcome.CREATED:
            return False
        uow.session.add_all(rewards)
        await uow.session.flush()
        self._notify(uow, user_id, {"type": "points", "amount": points, "reason": reason})
        for reward, request in zip(rewards, requests[1:], strict=True):
            self._notify(
                uow,
                reward.referrer_id,
                {
                    "type": "referral_reward",
                    "amount": request.amount,
                    "level": reward.level,
                    "status": request.kind.value,
                },
            )
        return True

    async def checkin(
        self, uow: UnitOfWork, user_id: int, today: date | None = None
    ) -> CheckinResult:
        """Today's check-in: points that grow with the streak; once a day."""
        today = today or today_utc()
        profile = await self.lock_profile(uow, user_id)
        checkin = self.rules.checkin(profile.last_checkin, profile.streak, today)
        if checkin is None:
            return CheckinResult(False, 0, profile.streak)
        profile.streak = checkin.streak
        profile.last_checkin = today
        profile.checkin_days += 1
        uow.session.add(profile)
        await uow.session.flush()
        await self._activate_if_due(uow, profile)
        await self.award(
            uow, user_id, checkin.points, Reason.CHECKIN, f"{user_id}:{today.isoformat()}"
        )
        return CheckinResult(True, checkin.points, checkin.streak)

    async def record_first_trade(self, uow: UnitOfWork, user_id: int, trade_id: str) -> bool:
        """A user's first trade: a one-off award, and the activity that releases referral
        rewards.  Later trades are no-ops here."""
        profile = await self.lock_profile(uow, user_id)
        if profile.first_trade_at is not None:
            return False
        profile.first_trade_at = datetime.now(UTC)
        uow.session.add(profile)
        await uow.session.flush()
        await self._activate_if_due(uow, profile)
        return await self.award(
            uow,
            user_id,
            self.settings.first_trade,
            Reason.FIRST_TRADE,
            str(user_id),
            metadata={"trade": trade_id},
        )

    async def record_wallet_link(self, uow: UnitOfWork, user_id: int, address: str) -> bool:
        """Linking a wallet pays once per user, whichever wallet and however often."""
        profile = await self.lock_profile(uow, user_id)
        if profile.wallet_linked_at is None:
            profile.wallet_linked_at = datetime.now(UTC)
            uow.session.add(profile)
            await uow.session.flush()
        return await self.award(
            uow,
            user_id,
            self.settings.wallet_link,
            Reason.WALLET_LINK,
            str(user_id),
            metadata={"wallet": address[:80]},
        )

    async def award_volume(
        self, uow: UnitOfWork, user_id: int, fill_id: str, notional_usdt_units: int, *, maker: bool
    ) -> bool:
        """Points for a fill's traded notional (maker and taker each earn on their side)."""
        points = self.rules.volume(notional_usdt_units, maker=maker)
        side = "maker" if maker else "taker"
        return await self.award(
            uow, user_id, points, Reason.VOLUME, f"{fill_id}:{side}", metadata={"fill": fill_id}
        )

    async def adjust(
        self,
        uow: UnitOfWork,
        audit: AuditContext,
        actor: User,
        *,
        user_id: int,
        amount: int,
        note: str,
        key: str,
        clawback: bool,
    ) -> Adjustment:
        """A moderator's or admin's grant (or clawback, which may not exceed the balance)."""
        if actor.role_enum is Role.MODERATOR and amount > self.settings.moderator_grant_cap:
            raise Forbidden(
                f"moderators may move at most {self.settings.moderator_grant_cap} points at once",
                code="over_moderator_cap",
            )
        if actor.id == user_id:
            raise Forbidden("nobody adjusts their own points", code="self_adjustment")
        await get_user(uow.session, user_id)
        reason = Reason.CLAWBACK if clawback else Reason.GRANT
        account = user_account(user_id, POINTS.code)
        debit, credit = (account, REWARDS_POOL) if clawback else (REWARDS_POOL, account)
        transfer_id = derived_id(reason, key)
        try:
            request = TransferRequest(
                transfer_id,
                reason,
                amount,
                debit,
                credit,
                POINTS.code,
                metadata={"by": actor.id or 0, "note": note},
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        submitted = await self.ledger.submit(uow, [request])
        repeated = submitted.outcomes[0] is Outcome.EXISTS
        if not repeated:
            await record(
                uow.session,
                audit,
                f"points.{reason}",
                target=f"user:{user_id}",
                details={"amount": amount, "note": note, "transfer": transfer_id},
            )
            self._notify(
                uow,
                user_id,
                {"type": "points", "amount": -amount if clawback else amount, "reason": reason},
            )
        return Adjustment(transfer_id, user_id, amount, repeated)

    async def lock_profile(self, uow: UnitOfWork, user_id: int) -> PointsProfile:
        """The user's points profile, created if new, locked until the transaction ends."""
        session = uow.session
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PointsProfile)
        await session.exec(
            insert.values(user_id=user_id, streak=0, checkin_days=0).on_conflict_do_nothing()
        )
        result = await session.exec(
            select(PointsProfile).where(col(PointsProfile.user_id) == user_id).with_for_update(),
            execution_options={"populate_existing": True},
        )
        return result.one()

    async def _activate_if_due(self, uow: UnitOfWork, profile: PointsProfile) -> None:
        """Mark the referee active once they qualify, and post their referrers' open rewards
        (expired ones stay refused and are voided by the sweeper)."""
        if profile.activated_at is not None:
            return
        if not self.rules.is_active(profile.checkin_days, profile.first_trade_at is not None):
            return
        profile.activated_at = datetime.now(UTC)
        uow.session.add(profile)
        await uow.session.flush()
        connection = await uow.session.connection()
        rows = (
            await connection.execute(text(_OPEN_REFERRAL_REWARDS), {"referee": profile.user_id})
        ).all()
        posts = [
            TransferRequest(
                derived_id("post", row.transfer_id),
                Reason.REFERRAL,
                kind=TransferKind.POST,
                pending_id=row.transfer_id,
            )
            for row in rows
        ]
        await self.ledger.submit(uow, posts, strict=False)

    async def _referrers(self, uow: UnitOfWork, user_id: int) -> dict[int, int]:
        """Level → referrer id, for the levels this user has."""
        connection = await uow.session.connection()
        row = (await connection.execute(text(_REFERRERS), {"user_id": user_id})).first()
        if row is None:
            return {}
        return {
            level: referrer for level, referrer in ((1, row.level1), (2, row.level2)) if referrer
        }

    def _notify(self, uow: UnitOfWork, user_id: int, data: dict[str, object]) -> None:
        hub = self.hub
        if hub is None:
            return

        async def publish() -> None:
            await hub.publish(f"user:{user_id}", "event", data)

        uow.after_commit(publish)
