"""The bot as launcher: real aiogram Bot and Dispatcher against a fake Bot API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from backend.db import migrate
from backend.users import service
from bot.runtime import run_polling
from tests.conftest import RunningServer, Server, make_settings, with_backend
from tests.fake_telegram import FakeBotAPI, message_update
from tests.helpers import signed_in

SECRET = "webhook-secret-for-tests"


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotAPI]:
    fake = await FakeBotAPI().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def bot_server(
    backend: dict[str, Any], tmp_path: Path, telegram: FakeBotAPI
) -> AsyncIterator[Server]:
    bot = {"api_server": telegram.url, "webhook_secret": SECRET}
    settings = make_settings(tmp_path, **with_backend(backend, bot=bot))
    async with RunningServer(settings) as server:
        yield server


def web_app_url(call_params: dict[str, Any]) -> str:
    return call_params["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"]


async def post_update(
    server: Server, update: dict[str, Any], secret: str = SECRET
) -> httpx.Response:
    async with server.client() as client:
        return await client.post(
            "/bot/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
        )


async def test_start_with_referral_opens_the_app_carrying_it(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    async with bot_server.client() as client:
        referrer, _ = await signed_in(client, new_telegram_id())
    newcomer = new_telegram_id()
    code = referrer["referral_code"]

    response = await post_update(bot_server, message_update(1, newcomer, f"/start ref_{code}"))
    assert response.status_code == 200

    (message,) = await telegram.wait_for("sendMessage")
    assert int(message.params["chat_id"]) == newcomer
    assert "Welcome to SimplRefQ, Ada!" in message.params["text"]
    assert "A friend invited you" in message.params["text"]
    assert message.params["parse_mode"] == "HTML"
    url = urlsplit(web_app_url(message.params))
    assert (url.scheme, url.netloc) == ("https", "app.example.test")
    assert parse_qs(url.query) == {"startapp": [f"ref_{code}"]}

    (menu,) = await telegram.wait_for("setChatMenuButton")
    assert int(menu.params["chat_id"]) == newcomer
    assert menu.params["menu_button"]["type"] == "web_app"
    assert menu.params["menu_button"]["web_app"]["url"] == "https://app.example.test/"

    async with bot_server.app.state.resources.db.reads() as session:
        user = await service.get_by_telegram_id(session, newcomer)
    assert user is not None and user.referred_by_id == referrer["id"]


async def test_plain_start_and_help(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    person = new_telegram_id()
    await post_update(bot_server, message_update(2, person, "/start", first_name="<b>Bob</b>"))
    (start,) = await telegram.wait_for("sendMessage")
    # User data is escaped in HTML parse mode.
    assert "&lt;b&gt;Bob&lt;/b&gt;" in start.params["text"]
    assert web_app_url(start.params) == "https://app.example.test/"

    await post_update(bot_server, message_update(3, person, "/help"))
    messages = await telegram.wait_for("sendMessage", count=2)
    assert "/start" in messages[1].params["text"]


async def test_webhook_refuses_a_wrong_secret(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    response = await post_update(
        bot_server, message_update(4, new_telegram_id(), "/help"), secret="nope"
    )
    assert response.status_code == 401
    missing = await post_update(
        bot_server, message_update(5, new_telegram_id(), "/help"), secret=""
    )
    assert missing.status_code == 401
    await asyncio.sleep(0.1)
    assert telegram.sent("sendMessage") == []


async def test_long_polling_answers_updates(tmp_path: Path, telegram: FakeBotAPI) -> None:
    settings = make_settings(tmp_path, bot={"api_server": telegram.url})
    await migrate.upgrade_async(settings)
    polling = asyncio.create_task(run_polling(settings, handle_signals=False))
    try:
        await telegram.updates.put(message_update(10, 4242, "/start"))
        (message,) = await telegram.wait_for("sendMessage", within=10)
        assert int(message.params["chat_id"]) == 4242
        assert telegram.sent("deleteWebhook") and telegram.sent("setMyCommands")
    finally:
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling


async def test_webhook_refuses_bad_bodies_cleanly(bot_server: Server, telegram: FakeBotAPI) -> None:
    async with bot_server.client() as client:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "content-type": "application/json"}
        for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
            response = await client.post("/bot/webhook", content=body, headers=headers)
            assert response.status_code == 400, body
            assert response.json()["error"] == "bad_update"
        absent = await client.post("/bot/webhook", json=message_update(9, 1, "/help"))
        assert absent.status_code == 401
    assert telegram.sent("sendMessage") == []
