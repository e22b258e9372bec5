"""Notification settings: muted topics, quiet hours, digests and language, applied by the real
worker against the fake Bot API; edited through the REST API and the bot's /settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import BadRequest
from backend.notify import preferences
from backend.notify.models import Status
from backend.notify.preferences import Preferences, validated
from backend.notify.service import enqueue
from backend.testing.fake_bot_api import FakeBotAPI, Reply, callback_update, message_update
from tests.helpers import Server, drain, post_update, queue, reply_to, rows, signed_in, users


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- The rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-24 21:59", None),  # before 22:00 UTC
        ("2026-11-24 22:00", "2026-11-25 07:00"),
        ("2026-11-25 03:30", "2026-11-25 07:00"),  # past midnight, still inside
        ("2026-11-25 07:00", None),  # the end is outside
    ],
)
def test_quiet_hours_spanning_midnight(now: str, expected: str | None) -> None:
    wanted = Preferences(quiet_start=22 * 60, quiet_end=7 * 60)
    until = wanted.quiet_until(at(now))
    assert until == (at(expected) if expected else None)


def test_quiet_hours_are_local_and_keep_wall_clock_time_across_a_dst_change() -> None:
    # New York leaves daylight saving on 2026-11-01 at 02:00 local: 01:00-09:00 local quiet hours
    # started at 05:00 UTC (EDT) and end at 14:00 UTC (EST).
    wanted = Preferences(quiet_start=1 * 60, quiet_end=9 * 60, time_zone="America/New_York")
    assert wanted.quiet_until(at("2026-11-01 05:30")) == at("2026-11-01 14:00")
    assert wanted.quiet_until(at("2026-11-01 14:00")) is None
    # Moscow is UTC+3 all year: 23:00-08:00 local is 20:00-05:00 UTC.
    moscow = Preferences(quiet_start=23 * 60, quiet_end=8 * 60, time_zone="Europe/Moscow")
    assert moscow.quiet_until(at("2026-11-24 20:15")) == at("2026-11-25 05:00")
    assert moscow.quiet_until(at("2026-11-24 19:59")) is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"time_zone": "Mars/Olympus"}, "invalid_time_zone"),
        ({"time_zone": "../../etc/passwd"}, "invalid_time_zone"),
        ({"quiet_hours": ("25:00", "07:00")}, "invalid_time"),
        ({"quiet_hours": ("7:00", "09:00")}, "invalid_time"),
        ({"quiet_hours": ("08:00", "08:00")}, "invalid_time"),
        ({"topics": {"lottery": False}}, "invalid_topic"),
        ({"digest": {"alerts": True}}, "invalid_topic"),  # alerts are never gathered
        ({"language": "xx"}, "invalid_language"),
    ],
)
def test_invalid_settings_are_refused_with_a_code(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        validated(Preferences(), **changes)
    assert refused.value.code == code


def test_changes_merge_into_the_current_settings() -> None:
    wanted = validated(Preferences(), topics={"trades": False}, digest={"points": True})
    wanted = validated(wanted, topics={"points": False}, quiet_hours=("22:30", "06:45"))
    assert wanted.muted == {"trades", "points"} and wanted.digest == {"points"}
    assert (wanted.quiet_start, wanted.quiet_end) == (22 * 60 + 30, 6 * 60 + 45)
    assert validated(wanted, quiet_hours=None).quiet_start is None
    assert validated(wanted, topics={"trades": True}).muted == {"points"}


# --- Applied by the worker -----------------------------------------------------------------


async def set_preferences(db: Database, user_id: int, **changes: Any) -> None:
    async with unit_of_work(db) as uow:
        await preferences.change(uow, user_id, **changes)


async def test_a_muted_topic_is_skipped_and_the_others_still_arrive(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (user,) = await users(db, 1)
    await set_preferences(db, user, topics={"points": False})
    await queue(db, user, "reward")  # a referral reward: the points topic
    async with unit_of_work(db) as uow:
        payload = {"market": "TON-USDT", "direction": "above", "price": "6", "fired_price": "6.01"}
        await enqueue(uow, user, "price_alert", payload, "alert-1")
    await drain(worker_factory(), db)
    (call,) = telegram.sent("sendMessage")
    assert "TON-USDT" in call.params["text"]
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"].endswith(
        "/?tab=settings"
    )
    reward, alert = await rows(db)
    assert (reward.status, reward.last_error) == (Status.SKIPPED.value, "muted by the user")
    assert alert.status == Status.SENT.value


async def test_quiet_hours_defer_a_message_to_their_end(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (user,) = await users(db, 1)
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    await set_preferences(db, user, quiet_hours=(f"{start:%H:%M}", f"{end:%H:%M}"))
    await queue(db, user, "at-night")
    assert await worker_factory().run_once() == 1
    await asyncio.sleep(0.2)
    assert telegram.sent("sendMessage") == []
    (row,) = await rows(db)
    assert row.status == Status.PENDING.value and row.attempts == 0
    assert row.available_at == end.replace(second=0, microsecond=0)
    # Quiet hours turned off: the deferred message goes as soon as it is due again.
    await set_preferences(db, user, quiet_hours=None)
    async with db.sessions() as session:
        row.available_at = now
        session.add(row)
        await session.commit()
    await drain(worker_factory(), db)
    assert len(telegram.sent("sendMessage")) == 1


async def test_a_digest_topic_waits_then_sends_one_message_for_every_row(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    first, second = await users(db, 2)
    await set_preferences(db, first, digest={"points": True})
    for n in range(11):
        await queue(db, first, f"small-{n}", amount=n + 1)
    await queue(db, second, "not-gathered")  # the other user did not ask for a digest
    worker = worker_factory(digest_seconds=0.6)
    await worker.run_once()
    await asyncio.sleep(0.1)
    assert [int(call.params["chat_id"]) for call in telegram.sent("sendMessage")] == [7_000_001]
    await asyncio.sleep(0.6)
    await drain(worker, db)
    digest = [c for c in telegram.sent("sendMessage") if int(c.params["chat_id"]) == 7_000_000]
    (message,) = digest
    text = message.params["text"]
    assert text.startswith("<b>Points</b>: 11 updates")
    assert text.count("• ") == 8 and text.endswith("…and 3 more")
    gathered = [row for row in await rows(db) if row.user_id == first]
    assert {row.status for row in gathered} == {Status.SENT.value}
    assert len({row.message_id for row in gathered}) == 1


async def test_a_digest_that_hits_a_server_error_is_retried_whole(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (user,) = await users(db, 1)
    await set_preferences(db, user, digest={"points": True})
    for n in range(3):
        await queue(db, user, f"retry-{n}")
    telegram.script(7_000_000, Reply(status=502))
    worker = worker_factory(digest_seconds=0.2)
    await asyncio.sleep(0.25)
    await drain(worker, db)
    calls = telegram.sent("sendMessage")
    assert [call.status for call in calls] == [502, 200]
    assert "3 updates" in calls[1].params["text"]
    assert {(row.status, row.attempts) for row in await rows(db)} == {(Status.SENT.value, 1)}


async def test_the_language_is_the_chosen_one_else_telegrams(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (russian,) = await users(db, 1, language="ru-RU")
    (chose_english,) = await users(db, 1, language="ru", first=7_000_500)
    await set_preferences(db, chose_english, language="en")
    await queue(db, russian, "ru", amount=22)
    await queue(db, chose_english, "en", amount=22)
    await drain(worker_factory(), db)
    texts = {int(c.params["chat_id"]): c.params["text"] for c in telegram.sent("sendMessage")}
    assert "+22 очка</b> от реферала 1-го уровня" in texts[7_000_000]
    assert "+22 points</b> from your level 1 referral" in texts[7_000_500]
    buttons = {
        int(c.params["chat_id"]): c.params["reply_markup"]["inline_keyboard"][0][0]["text"]
        for c in telegram.sent("sendMessage")
    }
    assert buttons == {7_000_000: "Открыть SimplRefQ", 7_000_500: "Open SimplRefQ"}


# --- The REST API ----------------------------------------------------------------------------


async def test_settings_api_reads_defaults_and_patches_fields(
    client: httpx.AsyncClient, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    response = await client.get("/api/notifications/settings", headers=auth)
    assert response.status_code == 200
    assert response.json() == {
        "topics": {
            "trades": True,
            "points": True,
            "referrals": True,
            "alerts": True,
            "signals": False,  # opt-in
            "wallet": True,
        },
        "digest": {"trades": False, "points": False, "referrals": False},
        "quiet_hours": None,
        "time_zone": "UTC",
        "language": None,
        "languages": ["en", "ru"],
        "digest_minutes": 15,
    }
    change = {
        "topics": {"trades": False},
        "digest": {"points": True},
        "quiet_hours": {"start": "23:00", "end": "08:00"},
        "time_zone": "Europe/Moscow",
        "language": "ru",
    }
    response = await client.patch("/api/notifications/settings", json=change, headers=auth)
    assert response.status_code == 200, response.text
    body = (await client.get("/api/notifications/settings", headers=auth)).json()
    assert body["topics"]["trades"] is False and body["topics"]["points"] is True
    assert body["digest"]["points"] is True
    assert body["quiet_hours"] == {"start": "23:00", "end": "08:00"}
    assert (body["time_zone"], body["language"]) == ("Europe/Moscow", "ru")
    # Only the fields sent change; null turns quiet hours off.
    response = await client.patch(
        "/api/notifications/settings", json={"quiet_hours": None}, headers=auth
    )
    assert response.json()["quiet_hours"] is None
    assert response.json()["time_zone"] == "Europe/Moscow"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"time_zone": "Nowhere/Land"}, "invalid_time_zone"),
        ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "invalid_time"),
        ({"quiet_hours": {"start": "7pm", "end": "07:00"}}, "bad_request"),
        ({"topics": {"spam": True}}, "invalid_topic"),
        ({"language": "klingonese"}, "bad_request"),
        ({"language": "de"}, "invalid_language"),
        ({"surprise": 1}, "bad_request"),
        ({"topics": {"trades": "yes"}}, "bad_request"),
    ],
)
async def test_settings_api_refuses_bad_values_and_changes_nothing(
    client: httpx.AsyncClient, telegram_id: int, body: dict[str, Any], error: str
) -> None:
    _, auth = await signed_in(client, telegram_id)
    before = (await client.get("/api/notifications/settings", headers=auth)).json()
    response = await client.patch("/api/notifications/settings", json=body, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert (await client.get("/api/notifications/settings", headers=auth)).json() == before


async def test_settings_api_needs_a_session(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/notifications/settings")).status_code == 401
    response = await client.patch("/api/notifications/settings", json={"language": "en"})
    assert response.status_code == 401


# --- The bot's /settings ---------------------------------------------------------------------


def buttons(call: Any) -> list[dict[str, Any]]:
    return [button for row in call.params["reply_markup"]["inline_keyboard"] for button in row]


async def tap(server: Server, telegram: FakeBotAPI, update: dict[str, Any]) -> Any:
    """Post a button tap; returns the answerCallbackQuery call it caused."""
    before = len(telegram.sent("answerCallbackQuery"))
    await post_update(server, update)
    return (await telegram.wait_for("answerCallbackQuery", count=before + 1))[before]


async def test_settings_in_the_bot_toggle_through_callback_queries(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id: Any
) -> None:
    person = new_telegram_id()
    async with bot_server.client() as client:
        user, auth = await signed_in(client, person)
    menu = await reply_to(bot_server, telegram, message_update(500, person, "/settings"))
    assert "<b>Notifications</b>" in menu.params["text"]
    by_text = {button["text"]: button for button in buttons(menu)}
    assert "✅ Order fills" in by_text and "⬜ Digest: Points" in by_text
    assert by_text["More settings"]["web_app"]["url"].endswith("/?tab=settings")

    answer = await tap(
        bot_server,
        telegram,
        callback_update(501, person, by_text["✅ Order fills"]["callback_data"]),
    )
    assert answer.params["text"] == "Saved"
    (edited,) = telegram.sent("editMessageText")[-1:]
    assert "🔕 Order fills" in {button["text"] for button in buttons(edited)}
    await tap(
        bot_server,
        telegram,
        callback_update(502, person, by_text["⬜ Digest: Points"]["callback_data"]),
    )
    quiet = next(b for b in buttons(edited) if b["text"].startswith("🌙"))
    await tap(bot_server, telegram, callback_update(503, person, quiet["callback_data"]))
    language = next(b for b in buttons(edited) if b["text"].startswith("🌐"))
    answer = await tap(
        bot_server, telegram, callback_update(504, person, language["callback_data"])
    )
    assert answer.params["text"] == "Сохранено"  # the answer is already in the new language
    assert "<b>Уведомления</b>" in telegram.sent("editMessageText")[-1].params["text"]

    async with bot_server.client() as client:
        body = (await client.get("/api/notifications/settings", headers=auth)).json()
    assert body["topics"]["trades"] is False and body["digest"]["points"] is True
    assert body["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert body["language"] == "ru"
    # Commands now answer in the chosen language, whatever Telegram's is.
    help_reply = await reply_to(bot_server, telegram, message_update(505, person, "/help"))
    assert "мини-приложение" in help_reply.params["text"]
    assert user["id"]


async def test_a_forged_or_stranger_tap_changes_nothing(
    bot_server: Server, telegram: FakeBotAPI, new_telegram_id: Any
) -> None:
    person, stranger = new_telegram_id(), new_telegram_id()
    async with bot_server.client() as client:
        _, auth = await signed_in(client, person)
        before = (await client.get("/api/notifications/settings", headers=auth)).json()
    answer = await tap(bot_server, telegram, callback_update(600, person, "ns:topic:lottery"))
    assert "out of date" in answer.params["text"]
    answer = await tap(bot_server, telegram, callback_update(601, stranger, "ns:quiet:"))
    assert "/start" in answer.params["text"] and answer.params["show_alert"] in (True, "true")
    async with bot_server.client() as client:
        after = (await client.get("/api/notifications/settings", headers=auth)).json()
    assert after == before
