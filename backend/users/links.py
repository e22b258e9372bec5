"""The links that bring people to the mini-app: a user's referral link and Telegram's share
dialog for it.  The API and the bot both give these out, so both build them here."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from backend.config import Settings
from backend.users.models import User


def referral_link(settings: Settings, user: User) -> str | None:
    """Telegram's direct link to the mini-app carrying the referral (``startapp=ref_<code>``);
    None without ``BOT_USERNAME``, which the link needs."""
    if not settings.bot.username:
        return None
    return f"https://t.me/{settings.bot.username}?startapp=ref_{user.referral_code}"


def share_url(link: str, text: str) -> str:
    """Telegram's share dialog (pick a chat, send) for ``link`` with ``text`` under it."""
    return "https://t.me/share/url?" + urlencode({"url": link, "text": text}, quote_via=quote)
