"""Points through the real server: check-in, history, referrals end to end, leaderboard, the
moderators' adjustments, and the events a user sees, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets
from litestar import Request
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from backend.db.uow import unit_of_work
from backend.http import database_error_handler
from backend.ledger.service import now_micros
from backend.ledger.verify import verify
from backend.notify.models import Notification
from backend.notify.service import enqueue
from backend.points.service import Points
from backend.testing.telegram import base_fields, signed_init_data
from backend.users.models import Role, User
from tests.helpers import Server, audit_entries, grant, receive, signed_in, subscribe, ws_url

DAY = 24 * 3600 * 1_000_000


def points_of(server: Server) -> Points:
    points: Points = server.app.state.resources.points
    return points


async def sign_in_referred(
    client: httpx.AsyncClient, telegram_id: int, code: str
) -> tuple[dict[str, Any], dict[str, str]]:
    init_data = signed_init_data(base_fields(telegram_id, start_param=f"ref_{code}"))
    response = await client.post("/api/auth/telegram", json={"init_data": init_data})
    assert response.status_code in (200, 201), response.text
    body = response.json()
    return body["user"], {"Authorization": f"Bearer {body['token']}"}


async def checkin_on(server: Server, user_id: int, day: date) -> None:
    async with unit_of_work(server.app.state.resources.db) as uow:
        await points_of(server).checkin(uow, user_id, day)


async def assert_books_balance(server: Server) -> None:
    report = await verify(server.app.state.resources.db)
    assert report.ok, report.problems


async def test_daily_checkin_pays_once_and_shows_in_history(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    first = await client.post("/api/points/checkin", headers=auth)
    assert first.status_code == 200, first.text
    assert first.json() == {"checked_in": True, "points": 100, "streak": 1, "balance": 100}
    again = (await client.post("/api/points/checkin", headers=auth)).json()
    assert again == {"checked_in": False, "points": 0, "streak": 1, "balance": 100}

    summary = (await client.get("/api/points", headers=auth)).json()
    assert summary["balance"] == 100 and summary["checked_in_today"] is True
    assert summary["next_checkin_points"] == 120  # tomorrow continues the streak
    assert summary["rank"] is not None

    history = (await client.get("/api/points/history", headers=auth)).json()
    assert [(e["amount"], e["reason"], e["status"]) for e in history["entries"]] == [
        (100, "checkin", "posted")
    ]
    balances = {b["asset"]: b for b in (await client.get("/api/balances", headers=auth)).json()}
    assert balances["PTS"]["total"] == "100" and balances["USDT"]["total"] == "0"
    assert set(balances) == {"USDT", "TON", "ETH", "BNB", "PTS"}
    await assert_books_balance(server)


async def test_streak_grows_to_its_cap_and_a_missed_day_resets_it(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    start = date(2026, 1, 1)
    for offset in range(9):
        await checkin_on(server, user["id"], start + timedelta(days=offset))
    await checkin_on(server, user["id"], start + timedelta(days=11))  # two days missed
    history = (await client.get("/api/points/history?limit=100", headers=auth)).json()
    paid = [entry["amount"] for entry in reversed(history["entries"])]
    # 100, then +20 a day, flat from day 7 (the cap), back to 100 after the gap.
    assert paid == [100, 120, 140, 160, 180, 200, 220, 220, 220, 100]


async def test_history_pages_without_gaps_or_repeats(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    for offset in range(7):
        await checkin_on(server, user["id"], date(2026, 2, 1) + timedelta(days=offset))
    seen: list[str] = []
    cursor = None
    while True:
        query = "/api/points/history?limit=3" + (f"&before={cursor}" if cursor else "")
        page = (await client.get(query, headers=auth)).json()
        seen += [entry["id"] for entry in page["entries"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    bad = await client.get("/api/points/history?before=nonsense", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_cursor"


async def test_referral_rewards_wait_for_the_referee_then_post(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    alice, alice_auth = await signed_in(client, new_telegram_id())
    bob, bob_auth = await sign_in_referred(client, new_telegram_id(), alice["referral_code"])
    carol, _ = await sign_in_referred(client, new_telegram_id(), bob["referral_code"])
    assert bob["referred_by_id"] == alice["id"] and carol["referred_by_id"] == bob["id"]

    await checkin_on(server, carol["id"], date(2026, 3, 1))  # 100 points for Carol
    alice_view = (await client.get("/api/referrals", headers=alice_auth)).json()
    bob_view = (await client.get("/api/referrals", headers=bob_auth)).json()
    # Bob is Carol's level 1 (10%), Alice her level 2 (3%): both pending, Carol is not active.
    assert (bob_view["pending"], bob_view["earned"]) == (10, 0)
    assert (alice_view["pending"], alice_view["earned"]) == (3, 0)
    assert alice_view["level1_count"] == 1 and alice_view["level2_count"] == 1
    assert alice_view["link"] == f"https://t.me/SimplRefQBot?startapp=ref_{alice['referral_code']}"
    # The one share URL the bot's /ref gives too: the link, and an invitation under it.
    share = urlsplit(alice_view["share_url"])
    assert (share.scheme, share.netloc, share.path) == ("https", "t.me", "/share/url")
    assert parse_qs(share.query) == {
        "url": [alice_view["link"]],
        "text": ["Trade, earn points and climb the leaderboard with me on SimplRefQ!"],
    }
    assert alice_view["referees"][0]["id"] == bob["id"]
    assert (await client.get("/api/points", headers=bob_auth)).json()["balance"] == 0

    # Carol trades: she is active, and every reward waiting on her posts.
    async with unit_of_work(server.app.state.resources.db) as uow:
        assert await points_of(server).record_first_trade(uow, carol["id"], "trade-1")
    bob_view = (await client.get("/api/referrals", headers=bob_auth)).json()
    # 10 from the check-in share, 50 from the first-trade award's share (10% of 500).
    assert (bob_view["pending"], bob_view["earned"]) == (0, 60)
    assert (await client.get("/api/points", headers=bob_auth)).json()["balance"] == 60
    alice_view = (await client.get("/api/referrals", headers=alice_auth)).json()
    assert (alice_view["pending"], alice_view["earned"]) == (0, 3 + 15)
    history = (await client.get("/api/points/history", headers=bob_auth)).json()
    assert {entry["status"] for entry in history["entries"]} == {"posted"}

    # A retried first trade pays nothing twice.
    async with unit_of_work(server.app.state.resources.db) as uow:
        assert not await points_of(server).record_first_trade(uow, carol["id"], "trade-1")
    assert (await client.get("/api/points", headers=bob_auth)).json()["balance"] == 60
    await assert_books_balance(server)


async def test_three_checkin_days_make_a_referee_active(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    alice, alice_auth = await signed_in(client, new_telegram_id())
    bob, _ = await sign_in_referred(client, new_telegram_id(), alice["referral_code"])
    for offset in range(3):
        await checkin_on(server, bob["id"], date(2026, 4, 1) + timedelta(days=offset))
    view = (await client.get("/api/referrals", headers=alice_auth)).json()
    assert view["pending"] == 0 and view["earned"] == 10 + 12 + 14
    assert view["referees"][0]["active"] is True


async def test_an_inactive_referees_rewards_are_voided_when_they_expire(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    alice, alice_auth = await signed_in(client, new_telegram_id())
    bob, _ = await sign_in_referred(client, new_telegram_id(), alice["referral_code"])
    await checkin_on(server, bob["id"], date(2026, 5, 1))
    assert (await client.get("/api/referrals", headers=alice_auth)).json()["pending"] == 10

    resources = server.app.state.resources
    hold = server.settings.points.referral_hold_days * DAY
    while await resources.ledger.expire(resources.db, now=now_micros() + hold + DAY):
        pass
    view = (await client.get("/api/referrals", headers=alice_auth)).json()
    assert (view["pending"], view["earned"]) == (0, 0)
    history = (await client.get("/api/points/history", headers=alice_auth)).json()
    assert [(e["amount"], e["status"]) for e in history["entries"]] == [(10, "voided")]

    # Activity after the expiry cannot revive a voided reward.
    async with unit_of_work(resources.db) as uow:
        await points_of(server).record_first_trade(uow, bob["id"], "late")
    view = (await client.get("/api/referrals", headers=alice_auth)).json()
    assert view["earned"] == 50  # only the share of the first-trade award, posted at once
    await assert_books_balance(server)


async def test_a_user_cannot_refer_themselves(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    me, auth = await signed_in(client, telegram_id)
    again, _ = await sign_in_referred(client, telegram_id, me["referral_code"])
    assert again["referred_by_id"] is None
    await client.post("/api/points/checkin", headers=auth)
    view = (await client.get("/api/referrals", headers=auth)).json()
    assert view["level1_count"] == 0 and view["pending"] == view["earned"] == 0


async def test_moderators_adjust_points_within_their_cap_and_users_cannot(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    target, target_auth = await signed_in(client, new_telegram_id())
    mod, mod_auth = await signed_in(client, new_telegram_id())
    admin, admin_auth = await signed_in(client, new_telegram_id())
    await grant(server, mod["id"], Role.MODERATOR)
    await grant(server, admin["id"], Role.ADMIN)
    body = {"user_id": target["id"], "amount": 500, "note": "bug bounty", "idempotency_key": "k1"}

    refused = await client.post("/api/admin/points/grant", json=body, headers=target_auth)
    assert refused.status_code == 403
    anonymous = await client.post("/api/admin/points/grant", json=body)
    assert anonymous.status_code == 401

    done = await client.post("/api/admin/points/grant", json=body, headers=mod_auth)
    assert done.status_code == 200, done.text
    assert done.json()["balance"] == 500 and done.json()["repeated"] is False
    repeat = await client.post("/api/admin/points/grant", json=body, headers=mod_auth)
    assert repeat.json()["repeated"] is True and repeat.json()["balance"] == 500

    over_cap = {**body, "amount": 1_000_000, "idempotency_key": "k2"}
    capped = await client.post("/api/admin/points/grant", json=over_cap, headers=mod_auth)
    assert capped.status_code == 403 and capped.json()["error"] == "over_moderator_cap"
    assert (
        await client.post("/api/admin/points/grant", json=over_cap, headers=admin_auth)
    ).status_code == 200

    too_much = {**body, "amount": 2_000_000, "idempotency_key": "k3"}
    clawback = await client.post("/api/admin/points/clawback", json=too_much, headers=admin_auth)
    assert clawback.status_code == 409 and clawback.json()["error"] == "insufficient_funds"
    fair = {**body, "amount": 300, "idempotency_key": "k4"}
    taken = await client.post("/api/admin/points/clawback", json=fair, headers=mod_auth)
    assert taken.status_code == 200 and taken.json()["balance"] == 1_000_500 - 300

    self_grant = {**body, "user_id": mod["id"], "idempotency_key": "k5"}
    assert (
        await client.post("/api/admin/points/grant", json=self_grant, headers=mod_auth)
    ).status_code == 403
    for bad in ({**body, "amount": 0}, {**body, "note": ""}, {**body, "idempotency_key": "a b"}):
        response = await client.post("/api/admin/points/grant", json=bad, headers=admin_auth)
        assert response.status_code == 400, (bad, response.text)

    grants = [
        e for e in await audit_entries(server, "points.grant") if e.target == f"user:{target['id']}"
    ]
    assert len(grants) == 2 and {e.actor_id for e in grants} == {mod["id"], admin["id"]}
    history = (await client.get("/api/points/history", headers=target_auth)).json()["entries"]
    assert [(e["amount"], e["reason"]) for e in history] == [
        (-300, "clawback"),
        (1_000_000, "grant"),
        (500, "grant"),
    ]
    await assert_books_balance(server)


async def test_leaderboard_ranks_users_and_streams_changes(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    admin, admin_auth = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    # Far above anything other tests grant, so these two lead the board.
    big, big_auth = await signed_in(client, new_telegram_id())
    bigger, _ = await signed_in(client, new_telegram_id())

    async with websockets.connect(ws_url(server)) as ws:
        await subscribe(ws, "leaderboard")
        await receive(ws)  # the snapshot as it stands
        for user, amount in ((big, 5_000_000_000), (bigger, 7_000_000_000)):
            body = {
                "user_id": user["id"],
                "amount": amount,
                "note": "leaderboard test",
                "idempotency_key": f"lb-{user['id']}",
            }
            response = await client.post("/api/admin/points/grant", json=body, headers=admin_auth)
            assert response.status_code == 200, response.text
        for _ in range(5):
            frame = await receive(ws, within=5)
            top = frame["data"]["top"]
            if top[0]["user_id"] == bigger["id"] and top[1]["user_id"] == big["id"]:
                break
        else:
            pytest.fail(f"the board never showed both grants: {frame}")
        assert top[0]["rank"] == 1 and top[1]["rank"] == 2 and top[0]["points"] == 7_000_000_000

    board = (await client.get("/api/points/leaderboard?limit=5", headers=big_auth)).json()
    assert [row["user_id"] for row in board["top"][:2]] == [bigger["id"], big["id"]]
    assert board["me"] == {
        "rank": 2,
        "user_id": big["id"],
        "name": big["first_name"],
        "points": 5_000_000_000,
    }

    # The Redis board is a cache of the ledger: wiped, it is rebuilt to the same order.
    resources = server.app.state.resources
    if resources.redis is not None:
        await resources.redis.delete(resources.leaderboard.scores, resources.leaderboard.versions)
        assert await resources.leaderboard.missing()
        await resources.leaderboard.restore(resources.db)  # what a restart runs
        assert not await resources.leaderboard.missing()
        again = (await client.get("/api/points/leaderboard?limit=5", headers=big_auth)).json()
        assert again == board


async def test_points_and_balance_events_reach_the_user_after_commit(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    async with websockets.connect(ws_url(server), additional_headers=auth) as ws:
        await subscribe(ws, f"user:{user['id']}")
        await client.post("/api/points/checkin", headers=auth)
        events = [(await receive(ws))["data"] for _ in range(2)]
    by_type = {event["type"]: event for event in events}
    assert by_type["balance"]["asset"] == "PTS" and by_type["balance"]["available"] == "100"
    assert by_type["points"] == {"type": "points", "amount": 100, "reason": "checkin"}


async def test_a_rolled_back_award_sends_nothing_and_records_nothing(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)

    async def award_then_fail() -> None:
        async with unit_of_work(server.app.state.resources.db) as uow:
            await points_of(server).award(uow, user["id"], 50, "wallet_link", "rollback")
            raise RuntimeError("the cause failed after the award")

    async with websockets.connect(ws_url(server), additional_headers=auth) as ws:
        await subscribe(ws, f"user:{user['id']}")
        with pytest.raises(RuntimeError):
            await award_then_fail()
        await client.post("/api/points/checkin", headers=auth)
        first = (await receive(ws))["data"]
    assert first.get("amount") != 50 and first.get("available") != "150"
    assert (await client.get("/api/points", headers=auth)).json()["balance"] == 100


async def test_farm_like_referrers_are_flagged_for_moderators(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    farmer, farmer_auth = await signed_in(client, new_telegram_id())
    mod, mod_auth = await signed_in(client, new_telegram_id())
    await grant(server, mod["id"], Role.MODERATOR)
    referees = [
        (await sign_in_referred(client, new_telegram_id(), farmer["referral_code"]))[0]["id"]
        for _ in range(server.settings.points.farm_min_referees)
    ]
    long_ago = datetime.now(UTC) - timedelta(days=server.settings.points.farm_grace_days + 1)
    async with unit_of_work(server.app.state.resources.db) as uow:
        await uow.session.exec(
            update(User).where(User.id.in_(referees)).values(created_at=long_ago)  # type: ignore[union-attr]
        )
    assert (
        await client.get("/api/admin/referrals/flagged", headers=farmer_auth)
    ).status_code == 403
    flagged = (await client.get("/api/admin/referrals/flagged", headers=mod_auth)).json()
    mine = [row for row in flagged if row["user_id"] == farmer["id"]]
    assert mine == [
        {
            "user_id": farmer["id"],
            "name": farmer["first_name"],
            "referees": len(referees),
            "inactive": len(referees),
        }
    ]
    assert json.dumps(flagged)  # plain JSON for the moderators' screen


async def test_a_cause_retried_after_activation_pays_nothing_and_fails_nothing(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    alice, alice_auth = await signed_in(client, new_telegram_id())
    bob, _ = await sign_in_referred(client, new_telegram_id(), alice["referral_code"])
    db, points = server.app.state.resources.db, points_of(server)
    async with unit_of_work(db) as uow:
        assert await points.record_wallet_link(uow, bob["id"], "EQ-first-wallet")
    async with unit_of_work(db) as uow:  # activates Bob: his pending share to Alice posts
        assert await points.record_first_trade(uow, bob["id"], "trade-1")
    async with unit_of_work(db) as uow:
        assert not await points.record_wallet_link(uow, bob["id"], "EQ-second-wallet")
    async with unit_of_work(db) as uow:  # the wallet award itself, retried by its cause
        assert not await points.award(uow, bob["id"], 250, "wallet_link", str(bob["id"]))
    view = (await client.get("/api/referrals", headers=alice_auth)).json()
    assert (view["earned"], view["pending"]) == (25 + 50, 0)
    await assert_books_balance(server)


async def test_out_of_range_numbers_get_4xx_not_500(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    admin, auth = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    huge = 10**20
    assert (await client.get(f"/api/badges/{huge}/bronze")).status_code == 404
    history = await client.get(f"/api/points/history?before={huge}{huge}:x", headers=auth)
    assert history.status_code == 400
    body = {"user_id": huge, "amount": 1, "note": "range", "idempotency_key": "range-1"}
    assert (
        await client.post("/api/admin/points/grant", json=body, headers=auth)
    ).status_code == 400


def test_a_transaction_that_lost_a_race_is_answered_503_retry() -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    request = Request(scope={"type": "http", "path": "/api/points/checkin", "app": None})  # type: ignore[typeddict-item]
    answer = database_error_handler(request, DBAPIError("UPDATE ...", None, Deadlock()))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.content["error"] == "retry"
    other = database_error_handler(request, DBAPIError("UPDATE ...", None, Exception()))
    assert other.status_code == 500


async def test_concurrent_checkins_and_activations_keep_the_books(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    """Many referees of one referrer earn, activate and trade at once: no deadlock, no share
    lost or paid twice, and the ledger verifies."""
    alice, alice_auth = await signed_in(client, new_telegram_id())
    bob, bob_auth = await sign_in_referred(client, new_telegram_id(), alice["referral_code"])
    referees = [
        (await sign_in_referred(client, new_telegram_id(), bob["referral_code"]))[0]["id"]
        for _ in range(12)
    ]
    db, points = server.app.state.resources.db, points_of(server)

    async def day(user_id: int, offset: int) -> None:
        await checkin_on(server, user_id, date(2026, 6, 1) + timedelta(days=offset))

    async def trade(user_id: int) -> None:
        async with unit_of_work(db) as uow:
            await points.record_first_trade(uow, user_id, f"t-{user_id}")

    for offset in range(3):  # the third day activates every referee
        jobs = [day(user_id, offset) for user_id in referees]
        jobs += [trade(user_id) for user_id in referees[:4] if offset == 1]
        await asyncio.gather(*jobs)

    # Each referee earned 100 + 120 + 140 by check-in, four of them 500 more by trading.
    bob_view = (await client.get("/api/referrals", headers=bob_auth)).json()
    alice_view = (await client.get("/api/referrals", headers=alice_auth)).json()
    assert (bob_view["earned"], bob_view["pending"]) == (12 * (10 + 12 + 14) + 4 * 50, 0)
    assert (alice_view["earned"], alice_view["pending"]) == (12 * (3 + 3 + 4) + 4 * 15, 0)
    await assert_books_balance(server)


async def test_admins_see_dead_letters_and_nobody_else_does(
    client: httpx.AsyncClient, server: Server, new_telegram_id: Callable[[], int]
) -> None:
    user, user_auth = await signed_in(client, new_telegram_id())
    mod, mod_auth = await signed_in(client, new_telegram_id())
    admin, admin_auth = await signed_in(client, new_telegram_id())
    await grant(server, mod["id"], Role.MODERATOR)
    await grant(server, admin["id"], Role.ADMIN)
    async with unit_of_work(server.app.state.resources.db) as uow:
        await enqueue(uow, user["id"], "points_adjusted", {"amount": 5, "note": "x"}, "dl-test")
        await uow.session.exec(
            update(Notification)
            .where(Notification.dedupe_key == "dl-test")  # type: ignore[arg-type]
            .values(status="dead", attempts=6, last_error="Bad Gateway")
        )
    for auth in (user_auth, mod_auth):
        assert (await client.get("/api/admin/notifications", headers=auth)).status_code == 403
    dead = (await client.get("/api/admin/notifications", headers=admin_auth)).json()
    mine = [row for row in dead if row["user_id"] == user["id"]]
    assert [(row["kind"], row["attempts"], row["last_error"]) for row in mine] == [
        ("points_adjusted", 6, "Bad Gateway")
    ]
    bad = await client.get("/api/admin/notifications?status=nonsense", headers=admin_auth)
    assert bad.status_code == 400
