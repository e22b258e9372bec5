"""Signing in from Telegram (the mini-app's initData or the bot's /start)."""

from __future__ import annotations

from backend.db.uow import UnitOfWork
from backend.notify.service import enqueue
from backend.users.service import SignIn, TelegramProfile, register


async def sign_in(
    uow: UnitOfWork,
    profile: TelegramProfile,
    *,
    start_param: str | None = None,
    is_demo: bool = False,
) -> SignIn:
    """The account, created or refreshed; a new referee's referrer hears of them."""
    signed = await register(uow, profile, start_param=start_param, is_demo=is_demo)
    user = signed.user
    if signed.created and user.referred_by_id is not None:
        await enqueue(
            uow,
            user.referred_by_id,
            "referral_joined",
            {"name": user.first_name},
            dedupe_key=f"referral_joined:{user.id}",
        )
    return signed
