"""The fake Bot API's scripted failures reach a real aiogram Bot as aiogram's own exceptions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)

from backend.testing.fake_bot_api import FakeBotAPI, Reply
from bot.runtime import create_bot
from tests.helpers import make_settings


@pytest.fixture
async def bot(tmp_path: Path, telegram: FakeBotAPI) -> AsyncIterator[Bot]:
    bot = create_bot(make_settings(tmp_path, bot={"api_server": telegram.url}))
    yield bot
    await bot.session.close()


async def test_scripted_replies_raise_aiogram_exceptions_in_order(
    bot: Bot, telegram: FakeBotAPI
) -> None:
    telegram.script(
        77,
        Reply(429, retry_after=3),
        Reply(403),
        Reply(502),
        Reply(400, description="Bad Request: message text is empty"),
    )
    with pytest.raises(TelegramRetryAfter) as too_many:
        await bot.send_message(77, "one")
    assert too_many.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in too_many.value.message
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(77, "two")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(77, "three")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(77, "four")

    # The script is spent: Telegram answers normally again.
    sent = await bot.send_message(77, "five")
    assert sent.chat.id == 77 and sent.text == "five"
    calls = telegram.sent("sendMessage")
    assert [call.status for call in calls] == [429, 403, 502, 400, 200]
    assert [call.params["text"] for call in calls] == ["one", "two", "three", "four", "five"]


async def test_a_script_touches_only_its_chat_and_a_slow_reply_is_slow(
    bot: Bot, telegram: FakeBotAPI
) -> None:
    telegram.script(1, Reply(200, delay=0.3))
    telegram.script(2, Reply(403))
    assert (await bot.send_message(3, "unscripted")).chat.id == 3

    started = time.monotonic()
    assert (await bot.send_message(1, "slow")).text == "slow"
    assert time.monotonic() - started >= 0.3
    # Recorded when Telegram received it, not when it answered.
    (slow,) = [call for call in telegram.sent("sendMessage") if call.params["text"] == "slow"]
    assert slow.at < started + 0.3

    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(2, "blocked")
    assert await bot.get_me()  # other methods are never scripted
    assert [call.status for call in telegram.calls] == [200, 200, 403, 200]
