"""Accounts from Telegram profiles, referral codes, lookups; REST and the bot share it."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.clock import utcnow
from backend.db.engine import insert_for
from backend.db.uow import UnitOfWork
from backend.errors import NotFound
from backend.users.models import Role, User

# Unambiguous lowercase alphabet (no 0/o, 1/l/i): codes are read aloud and typed by hand.
_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
# 31**10 ≈ 8e14: the chance of any collision stays below 1e-3 up to a million users.
_CODE_LENGTH = 10
# Activity is counted in days (referral rewards, streaks): refreshing last_seen_at on every
# app open would turn each sign-in into a write for no gain.
LAST_SEEN_RESOLUTION = timedelta(minutes=10)
_START_PARAM = re.compile(r"^ref_([a-z0-9]{4,16})$")


def new_referral_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))


def referral_code_from_start_param(start_param: str | None) -> str | None:
    """``ref_<code>`` → ``<code>``; anything else carries no referral."""
    if not start_param:
        return None
    match = _START_PARAM.match(start_param)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class TelegramProfile:
    """What Telegram tells us about a person, from signed initData or a bot update."""

    telegram_id: int
    first_name: str = ""
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    is_premium: bool = False
    photo_url: str | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    user: User
    created: bool


async def register(
    uow: UnitOfWork,
    profile: TelegramProfile,
    *,
    start_param: str | None = None,
    is_demo: bool = False,
) -> SignIn:
    """Create the user, or refresh their profile when it changed (``auth.signin`` adds
    what a sign-in does besides).

    A returning user whose profile is unchanged costs one autocommit read and no write.  A
    referral attaches only when the account is created: a referrer is therefore always an
    older account, which makes self-referral and cycles impossible by construction, and a
    referral once set is never overwritten.
    """
    now = utcnow()
    profile_values = _profile_values(profile)
    async with uow.read() as session:
        existing = await get_by_telegram_id(session, profile.telegram_id)
        if existing is not None and _up_to_date(existing, profile_values, now):
            return SignIn(user=existing, created=False)
        referrer_id = None
        if existing is None:
            referrer_id = await _referrer_id(session, referral_code_from_start_param(start_param))
    profile_values["last_seen_at"] = now
    code = new_referral_code()
    insert = insert_for(uow.session)(User).values(
        telegram_id=profile.telegram_id,
        referral_code=code,
        referred_by_id=referrer_id,
        role=Role.USER.value,
        is_demo=is_demo,
        created_at=now,
        **profile_values,
    )
    statement = insert.on_conflict_do_update(
        index_elements=[User.__table__.c.telegram_id],  # type: ignore[attr-defined]
        set_=profile_values,
    ).returning(User)
    result = await uow.session.exec(statement, execution_options={"populate_existing": True})
    user: User = result.scalar_one()
    # The code is only ours if this statement inserted the row (an update keeps the old one).
    created = user.referral_code == code
    return SignIn(user=user, created=created)


def _profile_values(profile: TelegramProfile) -> dict[str, Any]:
    values: dict[str, Any] = {
        "username": profile.username,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "language_code": profile.language_code,
        "is_premium": profile.is_premium,
    }
    if profile.photo_url is not None:
        # Bot updates carry no photo; keep the one the mini-app last reported.
        values["photo_url"] = profile.photo_url
    return values


def _up_to_date(user: User, values: dict[str, Any], now: datetime) -> bool:
    if any(getattr(user, field) != value for field, value in values.items()):
        return False
    return now - user.last_seen_at < LAST_SEEN_RESOLUTION


async def _referrer_id(session: AsyncSession, code: str | None) -> int | None:
    if code is None:
        return None
    result = await session.exec(select(User.id).where(User.referral_code == code))
    return result.first()


async def reopen_bot_chat(uow: UnitOfWork, user: User) -> None:
    """The user (re)started the bot after blocking it: notifications may reach them again."""
    if user.bot_blocked_at is not None:
        await uow.session.exec(
            update(User).where(col(User.id) == user.id).values(bot_blocked_at=None)
        )


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


async def get_by_telegram_id(session: AsyncSession, telegram_id: int) -> User | None:
    result = await session.exec(select(User).where(User.telegram_id == telegram_id))
    return result.first()


async def count_referees(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(User).where(User.referred_by_id == user_id)
    )
    return int(count or 0)


async def list_users(session: AsyncSession, *, limit: int, offset: int) -> list[User]:
    result = await session.exec(select(User).order_by(User.id).limit(limit).offset(offset))  # type: ignore[arg-type]
    return list(result.all())
