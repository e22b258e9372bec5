"""HTTP: balances, points, check-in, history, leaderboard, referrals; moderators' adjustments."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from backend.account import summary as account
from backend.audit.service import AuditContext
from backend.auth.guards import moderator_only
from backend.auth.sessions import SignedIn, signed_in_id
from backend.config import Settings
from backend.db.engine import Database
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest
from backend.openapi import errors
from backend.points import queries
from backend.points.feed import named
from backend.points.leaderboard import Leaderboard
from backend.points.schemas import (
    Adjust,
    AdjustmentView,
    BalanceView,
    CheckinView,
    FlaggedView,
    HistoryItem,
    HistoryPage,
    LeaderboardRow,
    LeaderboardView,
    PointsSummary,
    RefereeView,
    ReferralLevel,
    ReferralsView,
)
from backend.points.service import Points


class BalancesController(Controller):
    path = "/api/balances"
    tags = ["ledger"]

    @get()
    async def balances(
        self, request: SignedIn, uow: NamedDependency[UnitOfWork]
    ) -> list[BalanceView]:
        """Every asset's balance: available, locked by open orders or pending transfers, total."""
        found = await account.balances(uow.read, signed_in_id(request))
        return [BalanceView(**asdict(balance)) for balance in found]


class PointsController(Controller):
    path = "/api/points"
    tags = ["points"]

    @get()
    async def summary(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        points: NamedDependency[Points],
        leaderboard: NamedDependency[Leaderboard],
    ) -> PointsSummary:
        """Balance, rank, check-in streak and what the next check-in pays."""
        found = await account.points_summary(
            uow.read, leaderboard, points.rules, signed_in_id(request)
        )
        return PointsSummary(**asdict(found))

    @post("/checkin", status_code=200)
    async def checkin(
        self, request: SignedIn, uow: NamedDependency[UnitOfWork], points: NamedDependency[Points]
    ) -> CheckinView:
        """Today's check-in (UTC days).  A second one the same day adds nothing."""
        user_id = signed_in_id(request)
        result = await points.checkin(uow, user_id)
        balance = await queries.points_balance(uow.session, user_id)
        return CheckinView(result.checked_in, result.points, result.streak, balance)

    @get("/history")
    async def history(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        before: Annotated[str | None, QueryParameter(max_length=90)] = None,
    ) -> HistoryPage:
        """Point movements, newest first, a page at a time."""
        cursor = _parse_cursor(before)
        async with uow.read() as session:
            entries = await queries.history(
                session, signed_in_id(request), limit=limit, before=cursor
            )
        next_cursor = None
        if len(entries) == limit:
            next_cursor = f"{entries[-1].timestamp}:{entries[-1].id}"
        return HistoryPage(
            entries=[HistoryItem(e.id, e.at, e.amount, e.reason, e.status) for e in entries],
            next=next_cursor,
        )

    @get("/leaderboard")
    async def leaderboard(
        self,
        request: SignedIn,
        db: NamedDependency[Database],
        leaderboard: NamedDependency[Leaderboard],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> LeaderboardView:
        """The top of the board and the signed-in user's own place."""
        top = await named(db, await leaderboard.top(limit))
        standing = await leaderboard.standing(signed_in_id(request))
        return LeaderboardView(
            top=[LeaderboardRow(**row) for row in top],
            me=LeaderboardRow(
                standing.rank, standing.user_id, request.user.first_name, standing.points
            ),
        )


class ReferralsController(Controller):
    path = "/api/referrals"
    tags = ["points"]

    @get()
    async def referrals(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
    ) -> ReferralsView:
        """The referral link and its share URL, referees, and rewards earned and pending."""
        found = await account.referral_summary(uow.read, settings, request.user)
        return ReferralsView(
            code=found.code,
            link=found.link,
            share_url=found.share_url,
            level1_count=found.level1_count,
            level2_count=found.level2_count,
            earned=found.earned,
            pending=found.pending,
            levels=[ReferralLevel(**asdict(level)) for level in found.levels],
            referees=[RefereeView(**asdict(referee)) for referee in found.referees],
        )


class PointsAdminController(Controller):
    path = "/api/admin"
    tags = ["admin"]
    guards = [moderator_only]

    @post("/points/grant", status_code=200, responses=errors(404, 409))
    async def grant(
        self,
        request: SignedIn,
        data: JSONBody[Adjust],
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
        points: NamedDependency[Points],
    ) -> AdjustmentView:
        """Give a user points from the rewards pool (audited; moderators are capped)."""
        return await _adjust(request, data, uow, audit, points, clawback=False)

    @post("/points/clawback", status_code=200, responses=errors(404, 409))
    async def clawback(
        self,
        request: SignedIn,
        data: JSONBody[Adjust],
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
        points: NamedDependency[Points],
    ) -> AdjustmentView:
        """Take points back into the rewards pool; never more than the user holds."""
        return await _adjust(request, data, uow, audit, points, clawback=True)

    @get("/referrals/flagged")
    async def flagged(
        self, uow: NamedDependency[UnitOfWork], settings: NamedDependency[Settings]
    ) -> list[FlaggedView]:
        """Referrers whose referees look like a farm: many, and mostly never active."""
        async with uow.read() as session:
            flagged = await queries.flagged_referrers(session, settings.points)
        return [FlaggedView(f.user_id, f.name, f.referees, f.inactive) for f in flagged]


async def _adjust(
    request: SignedIn,
    data: Adjust,
    uow: UnitOfWork,
    audit: AuditContext,
    points: Points,
    *,
    clawback: bool,
) -> AdjustmentView:
    adjustment = await points.adjust(
        uow,
        audit,
        request.user,
        user_id=data.user_id,
        amount=data.amount,
        note=data.note.strip(),
        key=data.idempotency_key,
        clawback=clawback,
    )
    return AdjustmentView(
        adjustment.transfer_id,
        adjustment.user_id,
        adjustment.amount,
        adjustment.repeated,
        adjustment.balance,
    )


def _parse_cursor(before: str | None) -> tuple[int, str] | None:
    if before is None:
        return None
    timestamp, _, transfer_id = before.partition(":")
    if not timestamp.isdigit() or len(timestamp) > 18 or not transfer_id:
        raise BadRequest("before: pass the `next` value of the previous page", code="bad_cursor")
    return int(timestamp), transfer_id
