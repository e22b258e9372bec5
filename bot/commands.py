"""/balance, /points, /ref: the Points tab and wallet in a chat.  Handlers only format: each
answer is the one the REST API gives (backend/account/summary.py)."""

from __future__ import annotations

from decimal import Decimal

from aiogram import Router, html
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from backend.account import summary as account
from backend.config import Settings
from backend.db.engine import Database
from backend.hub.backends.base import HubBackend
from backend.market.quotes import latest_quotes
from backend.points.leaderboard import Leaderboard
from backend.points.rules import Rules
from backend.users import service
from backend.users.models import User
from bot.handlers import mini_app_url, open_app_keyboard


async def _account(message: Message, db: Database) -> User | None:
    """The sender's account, or None after telling them to press /start."""
    if message.from_user is None or message.from_user.is_bot:
        return None
    async with db.reads() as session:
        user = await service.get_by_telegram_id(session, message.from_user.id)
    if user is None:
        await message.answer(_("You have no account yet: press /start first."))
    return user


async def balance(message: Message, settings: Settings, db: Database) -> None:
    user = await _account(message, db)
    if user is None or user.id is None:
        return
    lines = []
    for found in await account.balances(db.reads, user.id):
        line = f"<b>{html.quote(found.asset)}</b>: {found.available}"
        if Decimal(found.locked) > 0:
            line += " " + _("({amount} locked)").format(amount=found.locked)
        lines.append(line)
    await message.answer(
        _("Your balances") + "\n\n" + "\n".join(lines),
        reply_markup=open_app_keyboard(mini_app_url(settings)),
    )


async def points(
    message: Message, settings: Settings, db: Database, leaderboard: Leaderboard
) -> None:
    user = await _account(message, db)
    if user is None or user.id is None:
        return
    found = await account.points_summary(db.reads, leaderboard, Rules(settings.points), user.id)
    rank = f"#{found.rank}" if found.rank is not None else _("not ranked yet")
    checked_in = _("checked in today") if found.checked_in_today else _("not checked in today")
    lines = [
        ngettext("<b>{count}</b> point", "<b>{count}</b> points", found.balance).format(
            count=found.balance
        ),
        _("Rank: {rank}").format(rank=rank),
        ngettext(
            "Streak: {days} day ({today})", "Streak: {days} days ({today})", found.streak
        ).format(days=found.streak, today=checked_in),
    ]
    await message.answer("\n".join(lines), reply_markup=open_app_keyboard(mini_app_url(settings)))


async def ref(message: Message, settings: Settings, db: Database) -> None:
    user = await _account(message, db)
    if user is None or user.id is None:
        return
    found = await account.referral_summary(db.reads, settings, user)
    invite = (
        _("Your referral link:\n{link}").format(link=html.quote(found.link))
        if found.link
        else _("Your referral code: <code>{code}</code>").format(code=html.quote(found.code))
    )
    keyboard = open_app_keyboard(mini_app_url(settings)).inline_keyboard
    if found.share_url:
        keyboard = [[InlineKeyboardButton(text=_("Share"), url=found.share_url)], *keyboard]
    counts = _("Friends invited: {level1} (level 1), {level2} (level 2)").format(
        level1=found.level1_count, level2=found.level2_count
    )
    earned = _("Earned: <b>{earned}</b> points, pending: {pending}").format(
        earned=found.earned, pending=found.pending
    )
    await message.answer(
        f"{invite}\n\n{counts}\n{earned}",
        reply_markup=InlineKeyboardMarkup(inline_keyboard=keyboard),
    )


async def signals(message: Message, settings: Settings, prices: HubBackend | None) -> None:
    """Until the signal generator lands, the market itself: each pair's price and 24h move."""
    quotes = await latest_quotes(prices) if prices is not None else []
    if not quotes:
        text = _("No prices yet: the market feed has not published. Try again in a moment.")
    else:
        lines = [
            f"{html.quote(q.symbol)}: <b>{html.quote(q.price)}</b> "
            + _("({change}% 24h)").format(
                change=("" if q.change_24h.startswith("-") else "+") + html.quote(q.change_24h)
            )
            for q in quotes
        ]
        text = _("<b>Markets now</b>") + "\n" + "\n".join(lines)
    await message.answer(text, reply_markup=open_app_keyboard(mini_app_url(settings)))


def create_router() -> Router:
    """A new router per Dispatcher, like bot.handlers.create_router."""
    router = Router(name="account")
    router.message.register(balance, Command("balance"))
    router.message.register(points, Command("points"))
    router.message.register(ref, Command("ref"))
    router.message.register(signals, Command("signals"))
    return router
