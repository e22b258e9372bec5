"""Translations: gettext catalogs through aiogram's I18n.

The sources are ``backend/locales/<lang>/LC_MESSAGES/messages.po``, extracted from the code
with ``scripts/i18n.sh``.  They are compiled in memory when first needed, so there is no
``.mo`` build step to forget and no compiled file to go stale.  English is the source language:
a message without a translation reads as written.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "messages"
DEFAULT_LOCALE = "en"


class Catalogs(I18n):
    """aiogram's I18n, reading ``.po`` sources instead of compiled ``.mo`` files."""

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        found: dict[str, gettext.GNUTranslations] = {}
        for source in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            with source.open("rb") as po:
                catalog = read_po(po)
            compiled = io.BytesIO()
            write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
            compiled.seek(0)
            found[source.parent.parent.name] = gettext.GNUTranslations(compiled)
        return found

    @contextmanager
    def context(self) -> Iterator[I18n]:
        """Set as *aiogram's* current I18n: each subclass of its context mixin gets a context
        variable of its own, which ``aiogram.utils.i18n.gettext`` would never read."""
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)


@cache
def catalogs() -> Catalogs:
    return Catalogs(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


def languages() -> tuple[str, ...]:
    """Every language a user can choose: the source language, then the translated ones."""
    return (DEFAULT_LOCALE, *sorted(catalogs().available_locales))


def locale_of(code: str | None) -> str:
    """``ru-RU`` → ``ru``; a language without a catalog falls back to English."""
    base = (code or "").replace("_", "-").split("-")[0].lower()
    return base if base in languages() else DEFAULT_LOCALE


@dataclass(frozen=True, slots=True)
class Translator:
    """Texts in one language, for code that runs outside a bot update (the outbox worker).
    ``scripts/i18n.sh`` extracts the literal arguments of ``.gettext`` and ``.ngettext``."""

    locale: str

    def gettext(self, message: str) -> str:
        return catalogs().gettext(message, locale=self.locale)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return catalogs().gettext(singular, plural, n, locale=self.locale)


def translator(code: str | None) -> Translator:
    return Translator(locale_of(code))
