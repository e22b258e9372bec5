"""The language of each update: the one the user chose in their settings, else Telegram's."""

from __future__ import annotations

from typing import Any

from aiogram.types import TelegramObject
from aiogram.types import User as TelegramUser
from aiogram.utils.i18n import I18nMiddleware
from sqlmodel import col, select

from backend.db.engine import Database
from backend.i18n import DEFAULT_LOCALE, catalogs, locale_of
from backend.notify.models import NotificationSettings
from backend.users.models import User


class UserLocale(I18nMiddleware):
    def __init__(self, db: Database) -> None:
        super().__init__(catalogs())
        self.db = db

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        sender: TelegramUser | None = data.get("event_from_user")
        if sender is None:
            return DEFAULT_LOCALE
        query = (
            select(NotificationSettings.language)
            .join(User, col(User.id) == col(NotificationSettings.user_id))
            .where(col(User.telegram_id) == sender.id)
        )
        async with self.db.reads() as session:
            chosen = (await session.exec(query)).first()
        return locale_of(chosen or sender.language_code)
