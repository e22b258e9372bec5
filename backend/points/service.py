"""Points: awards from the rewards pool, daily check-in, referral shares, grants and clawbacks.

Transport-neutral: REST, the bot and the trading engine call these.  Every award is one ledger
submit whose transfer ids derive from the cause, so a retried cause never pays twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlmodel import col, select

from backend.audit.service import AuditContext, record
from backend.config import PointsSettings
from backend.db.engine import insert_for
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest, Forbidden
from backend.hub.hub import Hub
from backend.ledger.assets import POINTS
from backend.ledger.domain import Outcome, TransferRequest, user_account
from backend.ledger.service import Ledger, TransferRefused, derived_id
from backend.notify.service import Notice, enqueue, enqueue_many
from backend.points import referrals
from backend.points.models import PointsProfile
from backend.points.referrals import REWARDS_POOL
from backend.points.rules import Reason, Rules
from backend.users.models import Role, User
from backend.users.service import get_user


@dataclass(frozen=True, slots=True)
class CheckinResult:
    checked_in: bool
    """False when the user had already checked in today."""
    points: int
    streak: int


@dataclass(frozen=True, slots=True)
class Award:
    user_id: int
    points: int
    reason: str
    cause: str
    """What the award pays for; the transfer id derives from it (and the reason)."""
    metadata: Mapping[str, str | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Adjustment:
    transfer_id: str
    user_id: int
    amount: int
    repeated: bool
    """The same idempotency key was used before: nothing new was recorded."""
    balance: int
    """The user's points afterwards."""


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

        Returns False when this cause was paid before.
        """
        return await self._award(uow, user_id, points, reason, cause, metadata or {}, [])

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
        releases = await self._activate_if_due(uow, profile)
        cause = f"{user_id}:{today.isoformat()}"
        await self._award(uow, user_id, checkin.points, Reason.CHECKIN, cause, {}, releases)
        return CheckinResult(True, checkin.points, checkin.streak)

    async def record_first_trade(self, uow: UnitOfWork, user_id: int, trade_id: str) -> bool:
        """A user's first trade: a one-off award, and the activity that releases referral
        rewards.  Later trades are no-ops here."""
        first = await self._first_trade(uow, user_id, trade_id)
        if first is None:
            return False
        award, releases = first
        return await self._award(
            uow, user_id, award.points, award.reason, award.cause, award.metadata, releases
        )

    async def pay_trades(
        self, uow: UnitOfWork, first_trades: Mapping[int, str], awards: Sequence[Award]
    ) -> int:
        """Users' first trades (user id to trade id) and trading awards, in one ledger submit.

        A transaction that submitted twice would hold a ledger chain's head while it waits
        for the accounts of its second submit: against a writer holding those accounts and
        waiting for that head, PostgreSQL has to abort one of the two.
        """
        firsts: list[Award] = []
        releases: list[TransferRequest] = []
        for user_id in sorted(first_trades):
            first = await self._first_trade(uow, user_id, first_trades[user_id])
            if first is not None:
                firsts.append(first[0])
                releases += first[1]
        return await self.award_many(uow, [*firsts, *awards], releases=releases)

    async def _first_trade(
        self, uow: UnitOfWork, user_id: int, trade_id: str
    ) -> tuple[Award, list[TransferRequest]] | None:
        """Marks the user's first trade; its award and the posts it releases, unsubmitted.
        None when the user traded before."""
        profile = await self.lock_profile(uow, user_id)
        if profile.first_trade_at is not None:
            return None
        profile.first_trade_at = datetime.now(UTC)
        releases = await self._activate_if_due(uow, profile)
        cause = str(user_id)
        award = Award(
            user_id, self.settings.first_trade, Reason.FIRST_TRADE, cause, {"trade": trade_id}
        )
        return award, releases

    async def record_wallet_link(self, uow: UnitOfWork, user_id: int, address: str) -> bool:
        """Linking a wallet pays once per user: later wallets, or the same one again, do not."""
        profile = await self.lock_profile(uow, user_id)
        if profile.wallet_linked_at is not None:
            return False
        profile.wallet_linked_at = datetime.now(UTC)
        uow.session.add(profile)
        metadata = {"wallet": address[:80]}
        points = self.settings.wallet_link
        return await self._award(
            uow, user_id, points, Reason.WALLET_LINK, str(user_id), metadata, []
        )

    async def award_many(
        self,
        uow: UnitOfWork,
        awards: Sequence[Award],
        *,
        releases: Sequence[TransferRequest] = (),
    ) -> int:
        """Several awards and their referral shares as one ledger submit, so a job paying
        many users (volume points) holds the ledger's locks once and briefly.  Causes paid
        before are skipped; returns how many awards were paid.

        ``releases``: posts of shares an activation freed, submitted first in the batch."""
        wanted = {derived_id(a.reason, a.cause): a for a in awards if a.points > 0}
        paid = await self.ledger.stored(uow, list(wanted))
        todo = sorted(
            ((award_id, a) for award_id, a in wanted.items() if award_id not in paid),
            key=lambda item: item[1].user_id,
        )
        requests: list[TransferRequest] = []
        owed: list[referrals.Share] = []
        for award_id, a in todo:
            requests.append(
                TransferRequest(
                    award_id,
                    a.reason,
                    a.points,
                    REWARDS_POOL,
                    user_account(a.user_id, POINTS.code),
                    POINTS.code,
                    metadata=a.metadata,
                )
            )
            if a.reason in Reason.SHARED and (chain := await referrals.referrers(uow, a.user_id)):
                profile = await self.lock_profile(uow, a.user_id)
                shares = referrals.shares(
                    self.settings,
                    award_id,
                    a.user_id,
                    a.points,
                    chain,
                    active=profile.activated_at is not None,
                )
                requests += [share.request for share in shares]
                owed += shares
        if not requests and not releases:
            return 0
        submitted = await self.ledger.submit(uow, [*releases, *requests], strict=False)
        for request, outcome in zip(requests, submitted.outcomes[len(releases) :], strict=True):
            if not outcome.ok:
                raise TransferRefused(request, outcome)
        uow.session.add_all([share.reward for share in owed])
        await uow.session.flush()
        for _, a in todo:
            self._notify(uow, a.user_id, {"type": "points", "amount": a.points, "reason": a.reason})
        notices = []
        for share in owed:
            event = {
                "amount": share.request.amount,
                "level": share.reward.level,
                "status": share.request.kind.value,
            }
            self._notify(uow, share.reward.referrer_id, {"type": "referral_reward", **event})
            key = f"referral_reward:{share.request.id}"
            notices.append(Notice(share.reward.referrer_id, "referral_reward", event, key))
        await enqueue_many(uow, notices)
        return len(todo)

    async def _award(
        self,
        uow: UnitOfWork,
        user_id: int,
        points: int,
        reason: str,
        cause: str,
        metadata: Mapping[str, str | int | bool],
        releases: list[TransferRequest],
    ) -> bool:
        """The award and its shares, after ``releases`` (posts of shares an activation
        freed), as one ledger batch."""
        award_id = derived_id(reason, cause)
        # A cause paid before is not rebuilt: the referee may have become active since, and
        # the shares built now would differ from those recorded then.
        if points <= 0 or await self.ledger.stored(uow, [award_id]):
            await self.ledger.submit(uow, releases, strict=False)
            return False
        award = TransferRequest(
            award_id,
            reason,
            points,
            REWARDS_POOL,
            user_account(user_id, POINTS.code),
            POINTS.code,
            metadata=metadata,
        )
        owed: list[referrals.Share] = []
        if reason in Reason.SHARED:
            chain = await referrals.referrers(uow, user_id)
            if chain:
                # The referee's profile row orders this award against their activation: a
                # share is either created after it (posted) or found by it (and posted then).
                profile = await self.lock_profile(uow, user_id)
                active = profile.activated_at is not None
                owed = referrals.shares(
                    self.settings, award_id, user_id, points, chain, active=active
                )
        requests = [award, *(share.request for share in owed)]
        submitted = await self.ledger.submit(uow, [*releases, *requests], strict=False)
        outcomes = submitted.outcomes[len(releases) :]
        for request, outcome in zip(requests, outcomes, strict=True):
            if not outcome.ok:
                raise TransferRefused(request, outcome)
        if outcomes[0] is not Outcome.CREATED:
            return False
        uow.session.add_all([share.reward for share in owed])
        await uow.session.flush()
        self._notify(uow, user_id, {"type": "points", "amount": points, "reason": reason})
        for share in owed:
            event = {
                "type": "referral_reward",
                "amount": share.request.amount,
                "level": share.reward.level,
                "status": share.request.kind.value,
            }
            self._notify(uow, share.reward.referrer_id, event)
            await enqueue(
                uow,
                share.reward.referrer_id,
                "referral_reward",
                {k: v for k, v in event.items() if k != "type"},
                dedupe_key=f"referral_reward:{share.request.id}",
            )
        return True

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
            signed = -amount if clawback else amount
            self._notify(uow, user_id, {"type": "points", "amount": signed, "reason": reason})
            payload = {"amount": signed, "note": note}
            await enqueue(uow, user_id, "points_adjusted", payload, dedupe_key=transfer_id)
        balance = submitted.balances[account].balance
        return Adjustment(transfer_id, user_id, amount, repeated, balance)

    async def lock_profile(self, uow: UnitOfWork, user_id: int) -> PointsProfile:
        """The user's points profile, created if new, locked until the transaction ends."""
        session = uow.session
        insert = insert_for(session)(PointsProfile)
        await session.exec(
            insert.values(user_id=user_id, streak=0, checkin_days=0).on_conflict_do_nothing()
        )
        result = await session.exec(
            select(PointsProfile).where(col(PointsProfile.user_id) == user_id).with_for_update(),
            execution_options={"populate_existing": True},
        )
        return result.one()

    async def _activate_if_due(
        self, uow: UnitOfWork, profile: PointsProfile
    ) -> list[TransferRequest]:
        """Mark the referee active once they qualify; returns the posts that release their
        referrers' waiting shares."""
        uow.session.add(profile)
        if profile.activated_at is not None:
            return []
        if not self.rules.is_active(profile.checkin_days, profile.first_trade_at is not None):
            return []
        profile.activated_at = datetime.now(UTC)
        await uow.session.flush()
        return await referrals.release(uow, profile.user_id)

    def _notify(self, uow: UnitOfWork, user_id: int, data: dict[str, object]) -> None:
        hub = self.hub
        if hub is None:
            return

        async def publish() -> None:
            await hub.publish(f"user:{user_id}", "event", data)

        uow.after_commit(publish)
