"""The earning rules, in one readable place: how many points each cause is worth.

Pure: dates and amounts in, points out.  The numbers come from ``PointsSettings`` (POINTS_*).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from backend.config import PointsSettings
from backend.ledger.assets import ASSETS

_USDT_UNIT: int = 10 ** ASSETS["USDT"].scale
BPS = 10_000


class Reason:
    """Transfer codes of point awards (they also name the cause in the history)."""

    CHECKIN = "checkin"
    FIRST_TRADE = "first_trade"
    WALLET_LINK = "wallet_link"
    VOLUME = "volume"
    REFERRAL = "referral"
    GRANT = "grant"
    CLAWBACK = "clawback"

    # Earnings a referrer shares in.  Grants are the team's gifts, not the referee's activity,
    # and referral rewards are not shared on, so nobody earns from a chain of referrals twice.
    SHARED = frozenset({CHECKIN, FIRST_TRADE, WALLET_LINK, VOLUME})


@dataclass(frozen=True, slots=True)
class Checkin:
    streak: int
    points: int


@dataclass(frozen=True, slots=True)
class Rules:
    settings: PointsSettings

    def checkin(self, last: date | None, streak: int, today: date) -> Checkin | None:
        """Today's check-in, or None when the user already checked in today."""
        if last is not None and last >= today:
            return None
        streak = streak + 1 if last == today - timedelta(days=1) else 1
        bonus_days = min(streak, self.settings.checkin_streak_cap) - 1
        return Checkin(
            streak, self.settings.checkin + bonus_days * self.settings.checkin_streak_bonus
        )

    @staticmethod
    def current_streak(last: date | None, streak: int, today: date) -> int:
        """The streak as it stands today: it survives until a day is missed."""
        return streak if last is not None and (today - last).days <= 1 else 0

    def next_checkin_points(self, last: date | None, streak: int, today: date) -> int:
        """What checking in tomorrow (or today, if not yet done) will pay."""
        if last is not None and last >= today:
            upcoming = self.checkin(last, streak, today + timedelta(days=1))
        else:
            upcoming = self.checkin(last, streak, today)
        assert upcoming is not None
        return upcoming.points

    def volume(self, notional_usdt_units: int, *, maker: bool) -> int:
        """Points for a fill worth ``notional_usdt_units`` (USDT's smallest units), rounded down."""
        rate = self.settings.volume_maker_per_usdt if maker else self.settings.volume_taker_per_usdt
        return max(0, notional_usdt_units) * rate // _USDT_UNIT

    def referral_shares(self, points: int) -> list[tuple[int, int]]:
        """(level, points) owed up the referral chain for an earning of ``points``; shares that
        round down to nothing are left out."""
        shares = []
        for level, bps in enumerate(self.settings.referral_bps, start=1):
            share = points * bps // BPS
            if share > 0:
                shares.append((level, share))
        return shares

    def is_active(self, checkin_days: int, traded: bool) -> bool:
        """Whether a referee has shown the real activity that releases referral rewards."""
        return traded or checkin_days >= self.settings.activation_checkin_days
