"""/settings: notification topics, digests, quiet hours and language as inline toggles.

Each button press is a callback query that changes one setting through the same service the
mini-app's Settings panel uses, then redraws the message in place.
"""

from __future__ import annotations

from aiogram import Router, html
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    WebAppInfo,
)
from aiogram.utils.i18n import gettext as _

from backend.config import Settings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.i18n import Translator, languages
from backend.notify import preferences
from backend.notify.messages import DIGEST_TOPICS, TOPICS, topic_label
from backend.notify.preferences import Preferences, clock
from backend.users import service
from backend.users.models import User
from bot.handlers import mini_app_url

# The quiet hours a tap cycles through; any other span is set in the mini-app.
QUIET_PRESETS: tuple[tuple[str, str] | None, ...] = (
    None,
    ("22:00", "07:00"),
    ("23:00", "08:00"),
    ("00:00", "09:00"),
)
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


class Toggle(CallbackData, prefix="ns"):
    setting: str
    """``topic``, ``digest``, ``quiet`` or ``language``."""
    topic: str = ""


def _quiet_span(wanted: Preferences) -> tuple[str, str] | None:
    if wanted.quiet_start is None or wanted.quiet_end is None:
        return None
    return clock(wanted.quiet_start), clock(wanted.quiet_end)


def render(
    settings: Settings, wanted: Preferences, locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    """The message and its keyboard, in ``locale`` (which a tap on the language just changed)."""
    t = Translator(locale)
    span = _quiet_span(wanted)
    quiet = t.gettext("off") if span is None else f"{span[0]}–{span[1]}"
    text = "\n".join(
        [
            t.gettext("<b>Notifications</b>"),
            t.gettext("Tap a topic to turn it on or off. A digest gathers its messages into one."),
            "",
            t.gettext("Quiet hours: {quiet}").format(quiet=quiet)
            + ("" if span is None else f" ({html.quote(wanted.time_zone)})"),
        ]
    )
    rows = [
        [
            InlineKeyboardButton(
                text=("✅ " if topic not in wanted.muted else "🔕 ") + topic_label(topic, t),
                callback_data=Toggle(setting="topic", topic=topic).pack(),
            )
        ]
        for topic in TOPICS
    ]
    rows += [
        [
            InlineKeyboardButton(
                text=("☑️ " if topic in wanted.digest else "⬜ ")
                + t.gettext("Digest: {topic}").format(topic=topic_label(topic, t)),
                callback_data=Toggle(setting="digest", topic=topic).pack(),
            )
        ]
        for topic in DIGEST_TOPICS
    ]
    rows.append(
        [
            InlineKeyboardButton(
                text="🌙 " + t.gettext("Quiet hours: {quiet}").format(quiet=quiet),
                callback_data=Toggle(setting="quiet").pack(),
            ),
            InlineKeyboardButton(
                text="🌐 " + LANGUAGE_NAMES.get(locale, locale),
                callback_data=Toggle(setting="language").pack(),
            ),
        ]
    )
    url = f"{mini_app_url(settings)}?tab=settings"
    rows.append(
        [InlineKeyboardButton(text=t.gettext("More settings"), web_app=WebAppInfo(url=url))]
    )
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _account(db: Database, telegram_id: int) -> User | None:
    async with db.reads() as session:
        return await service.get_by_telegram_id(session, telegram_id)


async def show(message: Message, settings: Settings, db: Database) -> None:
    if message.from_user is None or message.from_user.is_bot:
        return
    user = await _account(db, message.from_user.id)
    if user is None or user.id is None:
        await message.answer(_("You have no account yet: press /start first."))
        return
    async with db.reads() as session:
        wanted = await preferences.load(session, user.id)
    text, keyboard = render(settings, wanted, wanted.locale(user.language_code))
    await message.answer(text, reply_markup=keyboard)


def _next_quiet(wanted: Preferences) -> tuple[str, str] | None:
    current = _quiet_span(wanted)
    index = QUIET_PRESETS.index(current) if current in QUIET_PRESETS else 0
    return QUIET_PRESETS[(index + 1) % len(QUIET_PRESETS)]


async def toggle(
    query: CallbackQuery, callback_data: Toggle, settings: Settings, db: Database
) -> None:
    user = await _account(db, query.from_user.id)
    if user is None or user.id is None:
        await query.answer(_("You have no account yet: press /start first."), show_alert=True)
        return
    async with unit_of_work(db) as uow:
        current = await preferences.load(uow.session, user.id)
        if callback_data.setting == "topic" and callback_data.topic in TOPICS:
            on = callback_data.topic in current.muted
            wanted = await preferences.change(uow, user.id, topics={callback_data.topic: on})
        elif callback_data.setting == "digest" and callback_data.topic in DIGEST_TOPICS:
            on = callback_data.topic not in current.digest
            wanted = await preferences.change(uow, user.id, digest={callback_data.topic: on})
        elif callback_data.setting == "quiet":
            wanted = await preferences.change(uow, user.id, quiet_hours=_next_quiet(current))
        elif callback_data.setting == "language":
            offered = languages()
            now = current.locale(user.language_code)
            chosen = offered[(offered.index(now) + 1) % len(offered)]
            wanted = await preferences.change(uow, user.id, language=chosen)
        else:
            # Only an old or forged button gets here: say so, change nothing.
            await query.answer(_("This button is out of date: send /settings again."))
            return
    locale = wanted.locale(user.language_code)
    if isinstance(query.message, Message):
        text, keyboard = render(settings, wanted, locale)
        await query.message.edit_text(text, reply_markup=keyboard)
    await query.answer(Translator(locale).gettext("Saved"))


def create_router() -> Router:
    router = Router(name="settings")
    router.message.register(show, Command("settings"))
    router.callback_query.register(toggle, Toggle.filter())
    return router
