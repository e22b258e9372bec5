"""Builds the aiogram Bot and Dispatcher, for webhook mode (inside the app) or long polling."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand

from backend.config import Settings
from backend.db.engine import Database
from backend.db.redis import connect_redis
from backend.hub.backends import backend_for
from backend.hub.backends.base import HubBackend
from backend.i18n import DEFAULT_LOCALE, Translator, languages
from backend.points.leaderboard import Leaderboard, leaderboard_for
from bot import commands, handlers
from bot import settings as settings_menu
from bot.i18n import UserLocale

log = structlog.get_logger(__name__)


def commands_in(language: str) -> list[BotCommand]:
    """The command menu Telegram shows, in one language."""
    t = Translator(language)
    return [
        BotCommand(command="start", description=t.gettext("Open SimplRefQ")),
        BotCommand(command="balance", description=t.gettext("Your balances")),
        BotCommand(command="points", description=t.gettext("Your points, rank and streak")),
        BotCommand(command="ref", description=t.gettext("Your referral link and rewards")),
        BotCommand(command="signals", description=t.gettext("AI calls, risk and track record")),
        BotCommand(command="settings", description=t.gettext("Notifications: what and when")),
        BotCommand(command="help", description=t.gettext("What this bot does")),
    ]


async def set_commands(bot: Bot) -> None:
    """English for everyone, and each translated language for users whose Telegram uses it."""
    await bot.set_my_commands(commands_in(DEFAULT_LOCALE))
    for language in languages():
        if language != DEFAULT_LOCALE:
            await bot.set_my_commands(commands_in(language), language_code=language)


def create_bot(settings: Settings) -> Bot:
    session = None
    if settings.bot.api_server:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.bot.api_server))
    return Bot(
        token=settings.bot.token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_dispatcher(
    settings: Settings, db: Database, leaderboard: Leaderboard, prices: HubBackend | None
) -> Dispatcher:
    """``prices``: the hub backend whose `prices` state /signals reads (None: no prices)."""
    dispatcher = Dispatcher(settings=settings, db=db, leaderboard=leaderboard, prices=prices)
    UserLocale(db).setup(dispatcher)
    dispatcher.include_routers(
        handlers.create_router(), commands.create_router(), settings_menu.create_router()
    )
    return dispatcher


@dataclass(slots=True)
class BotRuntime:
    bot: Bot
    dispatcher: Dispatcher

    @classmethod
    def create(
        cls,
        settings: Settings,
        db: Database,
        leaderboard: Leaderboard,
        prices: HubBackend | None = None,
    ) -> BotRuntime:
        dispatcher = create_dispatcher(settings, db, leaderboard, prices)
        return cls(bot=create_bot(settings), dispatcher=dispatcher)

    async def close(self) -> None:
        await self.bot.session.close()


async def set_webhook(settings: Settings) -> str:
    url = f"{settings.app.base_url}/bot/webhook"
    bot = create_bot(settings)
    try:
        await bot.set_webhook(
            url,
            secret_token=settings.bot.webhook_secret,
            drop_pending_updates=False,
            allowed_updates=["message", "callback_query"],
        )
        await set_commands(bot)
    finally:
        await bot.session.close()
    return url


async def run_polling(settings: Settings, *, handle_signals: bool = True) -> None:
    db = Database.connect(settings)
    redis = connect_redis(settings)
    leaderboard = leaderboard_for(db, redis, settings.redis.key_prefix)
    # Prices are the hub's kept state: in Redis they are readable from here; without Redis they
    # live in the server's memory, out of this process's reach.
    prices = backend_for(redis, settings.redis.key_prefix) if redis else None
    runtime = BotRuntime.create(settings, db, leaderboard, prices)
    try:
        # Polling and a webhook exclude each other at Telegram's end.
        await runtime.bot.delete_webhook(drop_pending_updates=False)
        await set_commands(runtime.bot)
        log.info("bot_polling")
        await runtime.dispatcher.start_polling(runtime.bot, handle_signals=handle_signals)
    finally:
        await runtime.close()
        if redis is not None:
            await redis.aclose()
        await db.dispose()
