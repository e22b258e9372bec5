"""What a notification says, per kind and language.  Formatting lives here, not in the cause.

Messages use Telegram's HTML parse mode; every value from a payload is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiogram import html

Render = Callable[[Mapping[str, Any]], str]

# English is the fallback for any language without its own text.
DEFAULT_LANGUAGE = "en"

_MESSAGES: dict[str, dict[str, Render]] = {
    "referral_reward": {
        "en": lambda p: (
            f"🎁 <b>+{int(p['amount'])} points</b> from your level {int(p['level'])} referral"
            + (" (released when they become active)" if p.get("status") == "pending" else "")
        ),
        "ru": lambda p: (
            f"🎁 <b>+{int(p['amount'])} очков</b> от реферала {int(p['level'])}-го уровня"
            + (" (начислим, когда он станет активным)" if p.get("status") == "pending" else "")
        ),
    },
    "points_adjusted": {
        "en": lambda p: f"<b>{int(p['amount']):+} points</b>: {html.quote(str(p.get('note', '')))}",
        "ru": lambda p: f"<b>{int(p['amount']):+} очков</b>: {html.quote(str(p.get('note', '')))}",
    },
}
_BUTTON = {"en": "Open SimplRefQ", "ru": "Открыть SimplRefQ"}


def language_of(code: str | None) -> str:
    """``ru-RU`` → ``ru``; unknown languages fall back to English."""
    base = (code or "").split("-")[0].lower()
    return base if base in _BUTTON else DEFAULT_LANGUAGE


def render(kind: str, payload: Mapping[str, Any], language: str | None) -> str:
    """The message text; KeyError for a kind nobody wrote a text for (a bug, dead-lettered)."""
    texts = _MESSAGES[kind]
    return texts.get(language_of(language), texts[DEFAULT_LANGUAGE])(payload)


def button_label(language: str | None) -> str:
    return _BUTTON[language_of(language)]


KINDS = frozenset(_MESSAGES)
