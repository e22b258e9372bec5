"""The bot as launcher: real aiogram Bot and Dispatcher against a fake Bot API server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from backend.db import migrate
from backend.db.uow import unit_of_work
from backend.hub.backends.memory import MemoryBackend
from backend.market.quotes import latest_quotes
from backend.testing.fake_bot_api import FakeBotAPI, message_update
from backend.users import service
from bot.runtime import run_polling
from tests.helpers import WEBHOOK_SECRET as SECRET
from tests.helpers import Server, make_settings, post_update, reply_to, signed_in


def web_app_url(call_params: dict[str, Any]) -> str:
    return call_params["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"]


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


async def award(server: Server, user_id: int, amount: int, cause: str) -> None:
    async with unit_of_work(server.app.state.resources.db) as uow:
        await server.app.state.resources.points.award(uow, user_id, amount, "checkin", cause)


async def test_balance_points_and_ref_for_a_user_with_points(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    person = new_telegram_id()
    async with bot_server.client() as client:
        user, _ = await signed_in(client, person)
    await award(bot_server, user["id"], 120, "bot-test")

    balance = await reply_to(bot_server, telegram, message_update(20, person, "/balance"))
    assert "<b>PTS</b>: 120" in balance.params["text"]
    assert "<b>TON</b>: 0" in balance.params["text"]
    assert "locked" not in balance.params["text"]
    assert web_app_url(balance.params) == "https://app.example.test/"

    points = await reply_to(bot_server, telegram, message_update(21, person, "/points"))
    assert "<b>120</b> points" in points.params["text"]
    assert "Rank: #" in points.params["text"]
    assert "Streak: 0 days (not checked in today)" in points.params["text"]
    assert web_app_url(points.params) == "https://app.example.test/"

    ref = await reply_to(bot_server, telegram, message_update(22, person, "/ref"))
    link = f"https://t.me/SimplRefQBot?startapp=ref_{user['referral_code']}"
    assert link in ref.params["text"]
    assert "Friends invited: 0 (level 1), 0 (level 2)" in ref.params["text"]
    assert "Earned: <b>0</b> points, pending: 0" in ref.params["text"]


async def test_ref_counts_referees_and_shares_the_link(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    person, friend = new_telegram_id(), new_telegram_id()
    async with bot_server.client() as client:
        referrer, auth = await signed_in(client, person)
    start = message_update(30, friend, f"/start ref_{referrer['referral_code']}")
    await reply_to(bot_server, telegram, start)
    async with bot_server.app.state.resources.db.reads() as session:
        referee = await service.get_by_telegram_id(session, friend)
    assert referee is not None and referee.id is not None
    # The referee is not active yet, so the referrer's 10% share is pending.
    await award(bot_server, referee.id, 120, "bot-test-referee")

    ref = await reply_to(bot_server, telegram, message_update(31, person, "/ref"))
    assert "Friends invited: 1 (level 1), 0 (level 2)" in ref.params["text"]
    assert "Earned: <b>0</b> points, pending: 12" in ref.params["text"]
    share, open_app = ref.params["reply_markup"]["inline_keyboard"]
    url = urlsplit(share[0]["url"])
    assert (url.netloc, url.path) == ("t.me", "/share/url")
    link = f"https://t.me/SimplRefQBot?startapp=ref_{referrer['referral_code']}"
    assert parse_qs(url.query)["url"] == [link]
    assert parse_qs(url.query)["text"]
    assert open_app[0]["web_app"]["url"] == "https://app.example.test/"
    # One answer for both transports: the mini-app shares exactly what the bot does.
    async with bot_server.client() as client:
        api = (await client.get("/api/referrals", headers=auth)).json()
    assert (api["link"], api["share_url"]) == (link, share[0]["url"])
    assert (api["level1_count"], api["pending"]) == (1, 12)


async def test_points_shows_the_rank_once_ranked(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    person = new_telegram_id()
    async with bot_server.client() as client:
        user, _ = await signed_in(client, person)
    unranked = await reply_to(bot_server, telegram, message_update(40, person, "/points"))
    assert "Rank: not ranked yet" in unranked.params["text"]

    await award(bot_server, user["id"], 120, "bot-test-rank")
    standing = await bot_server.app.state.resources.leaderboard.standing(user["id"])
    assert standing.rank is not None
    ranked = await reply_to(bot_server, telegram, message_update(41, person, "/points"))
    assert f"Rank: #{standing.rank}\n" in ranked.params["text"]


async def test_account_commands_ask_an_unknown_user_to_start(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    stranger = new_telegram_id()
    for update_id, command in enumerate(("/balance", "/points", "/ref"), start=50):
        reply = await reply_to(bot_server, telegram, message_update(update_id, stranger, command))
        assert int(reply.params["chat_id"]) == stranger
        assert "press /start first" in reply.params["text"]
    async with bot_server.app.state.resources.db.reads() as session:
        assert await service.get_by_telegram_id(session, stranger) is None


async def test_account_commands_escape_a_hostile_name(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    person = new_telegram_id()
    start = await reply_to(
        bot_server, telegram, message_update(60, person, "/start", first_name="<b>&")
    )
    assert "&lt;b&gt;&amp;" in start.params["text"]
    for update_id, command in enumerate(("/balance", "/points", "/ref"), start=61):
        update = message_update(update_id, person, command, first_name="<b>&")
        reply = await reply_to(bot_server, telegram, update)
        assert "<b>&" not in reply.params["text"], command


async def test_help_lists_the_account_commands(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id
) -> None:
    reply = await reply_to(bot_server, telegram, message_update(70, new_telegram_id(), "/help"))
    for command in ("/balance", "/points", "/ref"):
        assert command in reply.params["text"]


async def test_signals_shows_the_markets_until_signals_exist(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id: Any
) -> None:
    person = new_telegram_id()
    hub = bot_server.app.state.resources.hub
    markets = {
        "TON-USDT": {"price": "5.4321", "change_24h": "1.25", "ts": 1},
        "ETH-USDT": {"price": "3100.50", "change_24h": "-0.40", "ts": 1},
    }
    await hub.publish("prices", "delta", {"markets": markets}, state={"markets": markets})
    call = await reply_to(bot_server, telegram, message_update(990_001, person, "/signals"))
    text = call.params["text"]
    assert "TON-USDT: <b>5.4321</b> (+1.25% 24h)" in text
    assert "ETH-USDT: <b>3100.50</b> (-0.40% 24h)" in text
    assert "web_app" in call.params["reply_markup"]["inline_keyboard"][0][0]


async def test_no_quotes_before_the_feed_first_publishes() -> None:
    assert await latest_quotes(MemoryBackend()) == []
