"""The gettext catalogs: every text in the code is translated, with the same placeholders."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from backend.i18n import LOCALES_DIR, languages, locale_of, translator

ROOT = Path(__file__).resolve().parents[2]
# As scripts/i18n.sh extracts them.
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [("backend/**.py", "python"), ("bot/**.py", "python")]


def texts_in_code() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(ROOT, METHODS, keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("language", [lang for lang in languages() if lang != "en"])
def test_every_text_in_the_code_is_translated_with_its_placeholders(language: str) -> None:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    entries = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in catalog if m.id}
    code = texts_in_code()
    assert code, "extraction found no texts"
    missing = sorted(code - set(entries))
    assert not missing, f"run scripts/i18n.sh and translate: {missing}"
    for text in code:
        entry = entries[text]
        assert not entry.fuzzy, f"fuzzy: {text!r}"
        sources = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(forms), f"untranslated: {text!r}"
        for form in forms:
            assert placeholders(form) == placeholders(sources[-1]), (text, form)


def test_languages_fall_back_to_english() -> None:
    assert locale_of("ru-RU") == "ru" and locale_of("RU") == "ru"
    assert locale_of("de") == "en" and locale_of(None) == "en" and locale_of("") == "en"
    three = translator("ru").ngettext("<b>{count}</b> point", "<b>{count}</b> points", 3)
    assert three == "<b>{count}</b> очка"
    five = translator("ru").ngettext("<b>{count}</b> point", "<b>{count}</b> points", 5)
    assert five == "<b>{count}</b> очков"
    assert translator("de").gettext("Saved") == "Saved"
