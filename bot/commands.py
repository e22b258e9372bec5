"""/balance, /points, /ref, /signals: the Points tab, the wallet and the signals in a chat.
Handlers only format: each answer is the one the REST API gives (backend/account/summary.py,
backend/signals/service.py)."""

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
from backend.signals.service import Signals, SignalView
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


async def signals(
    message: Message, settings: Settings, db: Database, prices: HubBackend | None
) -> None:
    """Each pair's price and 24h move, then each market's AI signal with its risk and, where
    the model found no edge, the numbers that say so (the same board as ``GET /api/signals``)."""
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
    board = await Signals.from_settings(settings).board(db.reads)
    if board:
        hours = f"{board[0].horizon_hours:g}"
        calls = [_("<b>AI signals</b>, {hours} h ahead").format(hours=hours)]
        calls += [_signal_lines(view) for view in board]
        text += "\n\n" + "\n\n".join(calls)
    else:
        text += "\n\n" + _(
            "No AI signals yet: the models are still training or no candle has closed."
        )
    await message.answer(text, reply_markup=open_app_keyboard(mini_app_url(settings)))


def _signal_lines(view: SignalView) -> str:
    call = (
        _("⬆️ up, {probability}") if view.direction == "up" else _("⬇️ down, {probability}")
    ).format(probability=f"{view.probability:.1%}")
    lines = [
        f"<b>{html.quote(view.market)}</b>: {call}",
        _("Volatility {volatility}, 95% VaR {var}").format(
            volatility=f"{view.volatility:.2%}", var=f"{view.var95:.2%}"
        ),
    ]
    if view.backtest_hit_rate is not None and view.baseline_hit_rate is not None:
        verdict = (
            _("Edge found: hit rate {hit_rate} vs {baseline_hit_rate} for {baseline}")
            if view.published
            else _("No edge found: hit rate {hit_rate} vs {baseline_hit_rate} for {baseline}")
        )
        lines.append(
            verdict.format(
                hit_rate=f"{view.backtest_hit_rate:.1%}",
                baseline_hit_rate=f"{view.baseline_hit_rate:.1%}",
                baseline=html.quote(view.baseline or "?"),
            )
        )
    else:
        lines.append(_("Edge found") if view.published else _("No edge found"))
    if view.source == "simulator":
        lines.append(_("(read partly simulated history)"))
    return "\n".join(lines)


def create_router() -> Router:
    """A new router per Dispatcher, like bot.handlers.create_router."""
    router = Router(name="account")
    router.message.register(balance, Command("balance"))
    router.message.register(points, Command("points"))
    router.message.register(ref, Command("ref"))
    router.message.register(signals, Command("signals"))
    return router
