"""What the points and balances API says."""

from __future__ import annotations

from datetime import datetime

import msgspec

from backend.inputs import INT32_MAX


class BalanceView(msgspec.Struct):
    asset: str
    scale: int
    available: str
    locked: str
    total: str


class PointsSummary(msgspec.Struct):
    balance: int
    rank: int | None
    streak: int
    checked_in_today: bool
    next_checkin_points: int
    checkin_days: int
    active: bool
    """Whether this user's activity already releases their referrers' rewards."""


class CheckinView(msgspec.Struct):
    checked_in: bool
    """False: already checked in today (nothing was added)."""
    points: int
    streak: int
    balance: int


class HistoryItem(msgspec.Struct):
    id: str
    at: datetime
    amount: int
    reason: str
    status: str


class HistoryPage(msgspec.Struct):
    entries: list[HistoryItem]
    next: str | None
    """Pass as ``before`` for the next (older) page; null on the last page."""


class LeaderboardRow(msgspec.Struct):
    rank: int | None
    user_id: int
    name: str
    points: int


class LeaderboardView(msgspec.Struct):
    top: list[LeaderboardRow]
    me: LeaderboardRow


class RefereeView(msgspec.Struct):
    id: int
    name: str
    joined_at: datetime
    active: bool


class ReferralLevel(msgspec.Struct):
    level: int
    share_bps: int
    earned: int
    pending: int


class ReferralsView(msgspec.Struct):
    code: str
    link: str | None
    """t.me deep link that opens the mini-app with this referral (null without BOT_USERNAME)."""
    share_url: str | None
    """Telegram's share dialog for the link."""
    level1_count: int
    level2_count: int
    earned: int
    pending: int
    levels: list[ReferralLevel]
    referees: list[RefereeView]


class Adjust(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int
    amount: int
    note: str
    idempotency_key: str
    """Chosen by the caller (e.g. a UUID); repeating it repeats nothing."""

    def __post_init__(self) -> None:
        if not 0 < self.user_id <= INT32_MAX:
            raise ValueError("user_id: a user's id")
        if not 0 < self.amount <= 10**12:
            raise ValueError("amount: a positive whole number of points")
        if not 1 <= len(self.note.strip()) <= 200:
            raise ValueError("note: 1-200 characters saying why")
        if not 1 <= len(self.idempotency_key) <= 48:
            raise ValueError("idempotency_key: 1-48 characters")


class AdjustmentView(msgspec.Struct):
    transfer_id: str
    user_id: int
    amount: int
    repeated: bool
    balance: int


class FlaggedView(msgspec.Struct):
    user_id: int
    name: str
    referees: int
    inactive: int
