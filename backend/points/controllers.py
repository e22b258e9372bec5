"""HTTP: balances, points, check-in, history, leaderboard, referrals; moderators' adjustments."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from backend.audit.service import AuditContext
from backend.auth.guards import moderator_only
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest
from backend.ledger.events import balance_view
from backend.openapi import errors
from backend.points import queries
from backend.points.feed import named
from backend.points.rules import Rules
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
from backend.points.service import Points, today_utc
from backend.resources import Resources
from backend.trading import queries as trading_queries
from backend.users.controllers import referral_link
from backend.users.models import User

SignedIn = Request[User, Any, Any]


def _user_id(request: SignedIn) -> int:
    assert request.user.id is not None
    return request.user.id


class BalancesController(Controller):
    path = "/api/balances"
    tags = ["ledger"]

    @get()
    async def balances(
        self, request: SignedIn, uow: NamedDependency[UnitOfWork]
    ) -> list[BalanceView]:
        """Every asset's balance: available, locked by open orders or pending transfers, total."""
        async with uow.read() as session:
            found = await queries.balances(session, _user_id(request))
            held = await trading_queries.held(session, _user_id(request))
        return [
            BalanceView(**balance_view(code, balance, held.get(code, 0)))
            for code, balance in found.items()
        ]


class PointsController(Controller):
    path = "/api/points"
    tags = ["points"]

    @get()
    async def summary(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        points: NamedDependency[Points],
        resources: NamedDependency[Resources],
    ) -> PointsSummary:
        """Balance, rank, check-in streak and what the next check-in pays."""
        user_id = _user_id(request)
        async with uow.read() as session:
            balance = await queries.points_balance(session, user_id)
            profile = await queries.profile(session, user_id)
        standing = await resources.leaderboard.standing(user_id)
        today = today_utc()
        last = profile.last_checkin if profile else None
        streak = profile.streak if profile else 0
        return PointsSummary(
            balance=balance,
            rank=standing.rank,
            streak=Rules.current_streak(last, streak, today),
            checked_in_today=last == today,
            next_checkin_points=points.rules.next_checkin_points(last, streak, today),
            checkin_days=profile.checkin_days if profile else 0,
            active=bool(profile and profile.activated_at),
        )

    @post("/checkin", status_code=200)
    async def checkin(
        self, request: SignedIn, uow: NamedDependency[UnitOfWork], points: NamedDependency[Points]
    ) -> CheckinView:
        """Today's check-in (UTC days).  A second one the same day adds nothing."""
        user_id = _user_id(request)
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
            entries = await queries.history(session, _user_id(request), limit=limit, before=cursor)
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
        resources: NamedDependency[Resources],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> LeaderboardView:
        """The top of the board and the signed-in user's own place."""
        top = await named(resources.db, await resources.leaderboard.top(limit))
        standing = await resources.leaderboard.standing(_user_id(request))
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
        """The referral link, referees, and rewards earned and still pending."""
        user = request.user
        async with uow.read() as session:
            summary = await queries.referrals(session, _user_id(request))
        link = referral_link(settings, user)
        shares = settings.points.referral_bps
        return ReferralsView(
            code=user.referral_code,
            link=link,
            share_url=f"https://t.me/share/url?{urlencode({'url': link})}" if link else None,
            level1_count=summary.level1_count,
            level2_count=summary.level2_count,
            earned=summary.earned,
            pending=summary.pending,
            levels=[
                ReferralLevel(level, bps, *summary.by_level.get(level, (0, 0)))
                for level, bps in enumerate(shares, start=1)
            ],
            referees=[RefereeView(r.id, r.name, r.joined_at, r.active) for r in summary.referees],
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
