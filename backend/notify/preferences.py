"""Per-user notification settings: topics on or off, digests, quiet hours, language.

One service for both ways of editing them (the mini-app's Settings panel and the bot's
/settings), and the rules the worker applies at delivery time, so that a change made after a
message was queued still counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import String, cast
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.clock import utcnow
from backend.db.engine import insert_for
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest
from backend.i18n import languages, locale_of
from backend.notify.messages import DIGEST_TOPICS, KINDS, OPT_IN_TOPICS, TOPICS
from backend.notify.models import NotificationSettings

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class Preferences:
    muted: frozenset[str] = frozenset()
    """Every topic that is off: those turned off, and the opt-in ones not turned on (a user
    with no saved settings has ``DEFAULT``'s)."""
    digest: frozenset[str] = frozenset()
    quiet_start: int | None = None
    """Minutes after local midnight; with ``quiet_end``, both set or both None."""
    quiet_end: int | None = None
    time_zone: str = "UTC"
    language: str | None = None

    def wants(self, kind: str) -> bool:
        return KINDS[kind].topic not in self.muted

    def digests(self, kind: str) -> bool:
        return KINDS[kind].topic in self.digest

    def locale(self, telegram_language: str | None) -> str:
        return locale_of(self.language or telegram_language)

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet hours around ``now`` end (UTC), or None outside them.

        Worked in local wall-clock minutes, so quiet hours keep their local times across a
        daylight-saving change.
        """
        if self.quiet_start is None or self.quiet_end is None:
            return None
        local = now.astimezone(ZoneInfo(self.time_zone))
        minute = local.hour * 60 + local.minute
        start, end = self.quiet_start, self.quiet_end
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return None
        wait = (end - minute) % MINUTES_PER_DAY
        ends = local.replace(second=0, microsecond=0) + timedelta(minutes=wait)
        # Wall-clock arithmetic: re-read the offset at the end time (it may differ after DST).
        return ends.replace(tzinfo=ZoneInfo(self.time_zone)).astimezone(now.tzinfo)

    def view(self) -> dict[str, Any]:
        return {
            "topics": {topic: topic not in self.muted for topic in TOPICS},
            "digest": {topic: topic in self.digest for topic in DIGEST_TOPICS},
            "quiet_hours": None
            if self.quiet_start is None or self.quiet_end is None
            else {"start": clock(self.quiet_start), "end": clock(self.quiet_end)},
            "time_zone": self.time_zone,
            "language": self.language,
        }


DEFAULT = Preferences(muted=frozenset(OPT_IN_TOPICS))
"""A user who never saved settings: every topic on but the opt-in ones."""


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_clock(value: str) -> int:
    """``"22:30"`` → 1350; anything else is refused."""
    hours, sep, minutes = value.partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit()):
        raise BadRequest(f"time {value!r} is not HH:MM", code="invalid_time")
    if not minutes.isdigit() or int(hours) > 23 or int(minutes) > 59:
        raise BadRequest(f"time {value!r} is not HH:MM", code="invalid_time")
    return int(hours) * 60 + int(minutes)


def _topics(values: Iterable[str], allowed: tuple[str, ...], what: str) -> frozenset[str]:
    chosen = frozenset(values)
    unknown = sorted(chosen - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown {what}: {', '.join(unknown)}; known: {', '.join(allowed)}",
            code="invalid_topic",
        )
    return chosen


def validated(
    current: Preferences,
    *,
    topics: dict[str, bool] | None = None,
    digest: dict[str, bool] | None = None,
    quiet_hours: tuple[str, str] | bool | None = False,
    time_zone: str | None = None,
    language: str | bool | None = False,
) -> Preferences:
    """``current`` with the given changes, every value checked.

    ``quiet_hours`` and ``language`` use False for "unchanged", since None means "none".
    """
    result = current
    if topics is not None:
        _topics(topics, TOPICS, "topics")
        muted = {t for t, on in topics.items() if not on} | (current.muted - set(topics))
        result = replace(result, muted=frozenset(muted))
    if digest is not None:
        _topics(digest, DIGEST_TOPICS, "digest topics")
        gathered = {t for t, on in digest.items() if on} | (current.digest - set(digest))
        result = replace(result, digest=frozenset(gathered))
    if quiet_hours is None:
        result = replace(result, quiet_start=None, quiet_end=None)
    elif quiet_hours is not False:
        assert isinstance(quiet_hours, tuple)
        start, end = (parse_clock(value) for value in quiet_hours)
        if start == end:
            raise BadRequest("quiet hours must not start and end together", code="invalid_time")
        result = replace(result, quiet_start=start, quiet_end=end)
    if time_zone is not None:
        result = replace(result, time_zone=valid_time_zone(time_zone))
    if language is not False:
        if language is not None and language not in languages():
            raise BadRequest(
                f"language {language!r} is not offered; offered: {', '.join(languages())}",
                code="invalid_language",
            )
        result = replace(result, language=language if isinstance(language, str) else None)
    return result


def valid_time_zone(name: str) -> str:
    """An IANA zone name the tz database knows (``Europe/Moscow``), else a 400."""
    if not name or len(name) > 64:
        raise BadRequest("time zone must be an IANA name", code="invalid_time_zone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"unknown time zone {name!r}", code="invalid_time_zone") from None
    return name


def _from_row(row: NotificationSettings) -> Preferences:
    opt_in = set(OPT_IN_TOPICS)
    return Preferences(
        muted=frozenset((set(row.muted) & set(TOPICS)) - opt_in)
        | frozenset(opt_in - set(row.subscribed)),
        digest=frozenset(row.digest) & set(DIGEST_TOPICS),
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone,
        language=row.language,
    )


async def load(session: AsyncSession, user_id: int) -> Preferences:
    return (await load_many(session, [user_id])).get(user_id, DEFAULT)


async def load_many(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, Preferences]:
    """Only users with saved settings appear; the rest have ``DEFAULT``."""
    query = select(NotificationSettings).where(
        col(NotificationSettings.user_id).in_(list(user_ids))
    )
    return {row.user_id: _from_row(row) for row in (await session.exec(query)).all()}


async def save(uow: UnitOfWork, user_id: int, preferences: Preferences) -> Preferences:
    values = {
        "muted": sorted(preferences.muted - set(OPT_IN_TOPICS)),
        "subscribed": sorted(set(OPT_IN_TOPICS) - preferences.muted),
        "digest": sorted(preferences.digest),
        "quiet_start": preferences.quiet_start,
        "quiet_end": preferences.quiet_end,
        "time_zone": preferences.time_zone,
        "language": preferences.language,
        "updated_at": utcnow(),
    }
    statement = insert_for(uow.session)(NotificationSettings).values(user_id=user_id, **values)
    await uow.session.exec(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))
    return preferences


async def change(uow: UnitOfWork, user_id: int, **changes: Any) -> Preferences:
    """Read, apply ``validated`` changes, write: one transaction, the caller's.

    The row is locked while changed, so a toggle in the bot and one in the mini-app at the same
    moment both land (PostgreSQL; SQLite has a single writer).
    """
    insert = insert_for(uow.session)(NotificationSettings).values(
        user_id=user_id,
        muted=[],
        subscribed=[],
        digest=[],
        time_zone=DEFAULT.time_zone,
        updated_at=utcnow(),
    )
    await uow.session.exec(insert.on_conflict_do_nothing(index_elements=["user_id"]))
    query = select(NotificationSettings).where(col(NotificationSettings.user_id) == user_id)
    locked = query.with_for_update().execution_options(populate_existing=True)
    row = (await uow.session.exec(locked)).one()
    return await save(uow, user_id, validated(_from_row(row), **changes))


async def subscribers(session: AsyncSession, topic: str) -> list[int]:
    """The users who turned the opt-in ``topic`` on (nobody else hears of it)."""
    if topic not in OPT_IN_TOPICS:
        raise ValueError(f"{topic!r} is not an opt-in topic; every user hears of it by default")
    # The JSON list as text, on both databases: a quoted topic name matches only itself.
    listed = cast(col(NotificationSettings.subscribed), String).like(f'%"{topic}"%')
    query = select(col(NotificationSettings.user_id)).where(listed)
    return sorted((await session.exec(query)).all())
