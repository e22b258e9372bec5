"""Chat commands.  Handlers only format: the logic is the users service, shared with the API."""

from __future__ import annotations

from urllib.parse import urlencode

from aiogram import Router, html
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonWebApp,
    Message,
    WebAppInfo,
)
from aiogram.types import User as TelegramUser
from aiogram.utils.i18n import gettext as _

from backend.auth.signin import sign_in
from backend.config import Settings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.users import service


def mini_app_url(settings: Settings, start_param: str | None = None) -> str:
    """The mini-app URL; a referral rides along as ``startapp`` like a t.me direct link's."""
    base = settings.app.base_url + "/"
    if service.referral_code_from_start_param(start_param) is None:
        return base
    return f"{base}?{urlencode({'startapp': start_param})}"


def open_app_keyboard(url: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=_("Open SimplRefQ"), web_app=WebAppInfo(url=url))
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def profile_of(user: TelegramUser) -> service.TelegramProfile:
    return service.TelegramProfile(
        telegram_id=user.id,
        first_name=user.first_name,
        username=user.username,
        last_name=user.last_name,
        language_code=user.language_code,
        is_premium=bool(user.is_premium),
    )


async def start(
    message: Message,
    command: CommandObject,
    settings: Settings,
    db: Database,
) -> None:
    if message.from_user is None or message.from_user.is_bot:
        return
    async with unit_of_work(db) as uow:
        signed = await sign_in(uow, profile_of(message.from_user), start_param=command.args)
        await service.reopen_bot_chat(uow, signed.user)
    url = mini_app_url(settings, command.args)
    names = {"app": html.quote(settings.app.name), "name": html.quote(message.from_user.first_name)}
    if signed.created and signed.user.referred_by_id is not None:
        greeting = _("Welcome to {app}, {name}! A friend invited you.").format(**names)
    else:
        greeting = _("Welcome to {app}, {name}!").format(**names)
    pitch = _(
        "Trade TON, ETH and BNB, earn points and climb the leaderboard. "
        "Tap the button to open the app."
    )
    await message.answer(f"{greeting}\n\n{pitch}", reply_markup=open_app_keyboard(url))
    if message.bot is not None:
        await message.bot.set_chat_menu_button(
            chat_id=message.chat.id,
            menu_button=MenuButtonWebApp(
                text=_("Open"), web_app=WebAppInfo(url=mini_app_url(settings))
            ),
        )


async def help_(message: Message, settings: Settings) -> None:
    text = _(
        "<b>{app}</b> is a trading and points mini-app.\n\n"
        "/start: open the app\n"
        "/balance: your balances\n"
        "/points: your points, rank and check-in streak\n"
        "/ref: your referral link and what it has earned\n"
        "/signals: AI calls per market, their risk and track record\n"
        "/settings: which notifications you get, and when\n"
        "/help: this message\n\n"
        "Invite friends with your referral link (/ref, or the app's Points tab) and earn a "
        "share of their points."
    ).format(app=html.quote(settings.app.name))
    await message.answer(text, reply_markup=open_app_keyboard(mini_app_url(settings)))


def create_router() -> Router:
    """A new router per Dispatcher: aiogram attaches a router to one dispatcher only."""
    router = Router(name="launcher")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    return router
