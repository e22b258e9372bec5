"""The answers to /balance, /points and /ref, and to ``GET /api/balances``, ``/api/points`` and
``/api/referrals``: one read each, returned as plain data for the transport to format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.config import Settings
from backend.i18n import Translator
from backend.ledger import queries as ledger_queries
from backend.ledger.events import balance_view
from backend.notify import preferences
from backend.points import queries as points_queries
from backend.points.leaderboard import Leaderboard
from backend.points.queries import Referee
from backend.points.rules import Rules
from backend.points.service import today_utc
from backend.trading import queries as trading_queries
from backend.users.links import referral_link, share_url
from backend.users.models import User

Reads = Callable[[], AsyncSession]
"""Opens one autocommit read session: ``uow.read`` in a request, ``Database.reads`` in the bot."""


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset's balance as decimal strings (a JSON number loses precision past 2**53)."""

    asset: str
    scale: int
    available: str
    locked: str
    """Held by open orders and pending transfers."""
    total: str


@dataclass(frozen=True, slots=True)
class PointsSummary:
    balance: int
    rank: int | None
    """1 for the most points; None before the first point."""
    streak: int
    checked_in_today: bool
    next_checkin_points: int
    checkin_days: int
    active: bool
    """Whether this user's activity already releases their referrers' rewards."""


@dataclass(frozen=True, slots=True)
class ReferralLevel:
    level: int
    share_bps: int
    earned: int
    pending: int


@dataclass(frozen=True, slots=True)
class ReferralSummary:
    code: str
    link: str | None
    """The mini-app's t.me link with the referral; None without BOT_USERNAME."""
    share_url: str | None
    """Telegram's share dialog for ``link``, with an invitation in the user's language."""
    level1_count: int
    level2_count: int
    earned: int
    pending: int
    levels: list[ReferralLevel]
    referees: list[Referee]


async def balances(reads: Reads, user_id: int) -> list[AssetBalance]:
    """Every asset, used or not, in the ledger's order."""
    async with reads() as session:
        found = await ledger_queries.balances(session, user_id)
        held = await trading_queries.held(session, user_id)
    return [
        AssetBalance(**balance_view(code, balance, held.get(code, 0)))
        for code, balance in found.items()
    ]


async def points_summary(
    reads: Reads,
    leaderboard: Leaderboard,
    rules: Rules,
    user_id: int,
    today: date | None = None,
) -> PointsSummary:
    """Balance, rank, the streak as it stands today and what the next check-in pays."""
    async with reads() as session:
        balance = await points_queries.points_balance(session, user_id)
        profile = await points_queries.profile(session, user_id)
    standing = await leaderboard.standing(user_id)
    today = today or today_utc()
    last = profile.last_checkin if profile else None
    streak = profile.streak if profile else 0
    return PointsSummary(
        balance=balance,
        rank=standing.rank,
        streak=Rules.current_streak(last, streak, today),
        checked_in_today=last == today,
        next_checkin_points=rules.next_checkin_points(last, streak, today),
        checkin_days=profile.checkin_days if profile else 0,
        active=bool(profile and profile.activated_at),
    )


async def referral_summary(reads: Reads, settings: Settings, user: User) -> ReferralSummary:
    """The referral link and its one share URL, the referees, and the rewards by level."""
    assert user.id is not None
    async with reads() as session:
        found = await points_queries.referrals(session, user.id)
        wanted = await preferences.load(session, user.id)
    link = referral_link(settings, user)
    # The invitation under the link, in the sharer's language: their chosen one, else
    # Telegram's, as the bot speaks to them.  A literal, so scripts/i18n.sh extracts it.
    t = Translator(wanted.locale(user.language_code))
    text = t.gettext("Trade, earn points and climb the leaderboard with me on SimplRefQ!")
    return ReferralSummary(
        code=user.referral_code,
        link=link,
        share_url=share_url(link, text) if link else None,
        level1_count=found.level1_count,
        level2_count=found.level2_count,
        earned=found.earned,
        pending=found.pending,
        levels=[
            ReferralLevel(level, bps, *found.by_level.get(level, (0, 0)))
            for level, bps in enumerate(settings.points.referral_bps, start=1)
        ],
        referees=found.referees,
    )
