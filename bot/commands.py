"""/balance, /points, /ref: the Points tab and wallet in a chat.  Handlers only format: the
reads are the queries the REST API makes (backend/points/controllers.py)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote, urlencode

from aiogram import Router, html
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from backend.config import Settings
from backend.db.engine import Database
from backend.hub.backends.base import HubBackend
from backend.ledger.events import balance_view
from backend.market.quotes import latest_quotes
from backend.points import queries
from backend.points.leaderboard import Leaderboard
from backend.points.rules import Rules
from backend.points.service import today_utc
from backend.trading import queries as trading_queries
from backend.users import service
from backend.users.controllers import referral_link
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
    async with db.reads() as session:
        found = await queries.balances(session, user.id)
        held = await trading_queries.held(session, user.id)
    lines = []
    for code, found_balance in found.items():
        view = balance_view(code, found_balance, held.get(code, 0))
        line = f"<b>{html.quote(view['asset'])}</b>: {view['available']}"
        if Decimal(view["locked"]) > 0:
            line += " " + _("({amount} locked)").format(amount=view["locked"])
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
    async with db.reads() as session:
        points_balance = await queries.points_balance(session, user.id)
        profile = await queries.profile(session, user.id)
    standing = await leaderboard.standing(user.id)
    today = today_utc()
    last = profile.last_checkin if profile else None
    streak = Rules.current_streak(last, profile.streak if profile else 0, today)
    rank = f"#{standing.rank}" if standing.rank is not None else _("not ranked yet")
    checked_in = _("checked in today") if last == today else _("not checked in today")
    lines = [
        ngettext("<b>{count}</b> point", "<b>{count}</b> points", points_balance).format(
            count=points_balance
        ),
        _("Rank: {rank}").format(rank=rank),
        ngettext("Streak: {days} day ({today})", "Streak: {days} days ({today})", streak).format(
            days=streak, today=checked_in
        ),
    ]
    await message.answer("\n".join(lines), reply_markup=open_app_keyboard(mini_app_url(settings)))


def share_url(link: str) -> str:
    text = _("Trade, earn points and climb the leaderboard with me on SimplRefQ!")
    return "https://t.me/share/url?" + urlencode({"url": link, "text": text}, quote_via=quote)


async def ref(message: Message, settings: Settings, db: Database) -> None:
    user = await _account(message, db)
    if user is None or user.id is None:
        return
    async with db.reads() as session:
        summary = await queries.referrals(session, user.id)
    link = referral_link(settings, user)
    invite = (
        _("Your referral link:\n{link}").format(link=html.quote(link))
        if link
        else _("Your referral code: <code>{code}</code>").format(
            code=html.quote(user.referral_code)
        )
    )
    keyboard = open_app_keyboard(mini_app_url(settings)).inline_keyboard
    if link:
        keyboard = [[InlineKeyboardButton(text=_("Share"), url=share_url(link))], *keyboard]
    counts = _("Friends invited: {level1} (level 1), {level2} (level 2)").format(
        level1=summary.level1_count, level2=summary.level2_count
    )
    earned = _("Earned: <b>{earned}</b> points, pending: {pending}").format(
        earned=summary.earned, pending=summary.pending
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
