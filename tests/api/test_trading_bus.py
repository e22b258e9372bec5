"""Two app instances on one PostgreSQL and one Redis: one runs the books, the other forwards.

Whichever instance takes a request, the answer is the same.  Each test has its own database
(no other test's orders rest on its books) and its own Redis prefix (its own leader lease).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis

from backend.errors import DomainError, NotFound, rebuilt
from backend.http import status_of
from backend.ledger.assets import ASSETS
from backend.trading.bus import Answer, Ask, Refusal
from backend.trading.commands import (
    InsufficientFunds,
    OrderClosed,
    OrderNotFound,
    PlaceOrder,
    WriterUnavailable,
    rejection,
)
from backend.trading.engine import OrderType, RejectReason, Side
from backend.trading.service import FaucetOff, MarketClosed, Trading, UnknownMarket
from backend.trading.term import TermLost
from tests.helpers import (
    REDIS_PREFIX,
    RunningServer,
    Server,
    make_settings,
    signed_in,
    temporary_database,
)


def _trading(server: Server) -> Trading:
    trading: Trading = server.app.state.resources.trading
    return trading


async def elected(*servers: Server, within: float = 20.0) -> tuple[Server, Server]:
    """(the instance that runs the books, the other) once one does."""
    deadline = time.monotonic() + within
    while True:
        running = [server for server in servers if _trading(server).running]
        if running:
            assert len(running) == 1
            return running[0], next(s for s in servers if s is not running[0])
        assert time.monotonic() < deadline, "no instance took the lease"
        await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def two_instances(
    tmp_path: Path, redis_url: str, **trading: Any
) -> AsyncIterator[tuple[Server, Server, str]]:
    """Two instances of one deployment; yields them and the deployment's Redis prefix."""
    prefix = f"{REDIS_PREFIX}-bus-{uuid.uuid4().hex[:6]}"
    async with temporary_database() as database:
        settings = make_settings(
            tmp_path,
            database={"url": database},
            redis={"url": redis_url, "key_prefix": prefix},
            trading=trading,
        )
        async with RunningServer(settings) as first, RunningServer(settings) as second:
            yield first, second, prefix


async def _usdt(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Decimal]:
    balances = (await http.get("/api/balances", headers=headers)).json()
    usdt = next(b for b in balances if b["asset"] == "USDT")
    return {"available": Decimal(usdt["available"]), "locked": Decimal(usdt["locked"])}


def order(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {"market": "TON-USDT", "side": side, "qty": qty, "price": price, **extra}


async def test_either_instance_takes_orders(
    redis_url: str, tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    async with two_instances(tmp_path, redis_url) as (first, second, _):
        leader, follower = await elected(first, second)
        assert _trading(follower).running is False
        async with leader.client() as on_leader, follower.client() as on_follower:
            alice, as_alice = await signed_in(on_follower, new_telegram_id())
            _, as_bob = await signed_in(on_leader, new_telegram_id())
            for headers in (as_alice, as_bob):
                topped = await on_follower.post("/api/faucet", headers=headers)
                assert topped.status_code == 200, topped.text
                assert {"asset": "USDT", "added": "10000"} in topped.json()

            # A crossing pair placed through different instances trades.
            sell = await on_leader.post(
                "/api/orders", json=order("sell", "100", "5"), headers=as_bob
            )
            assert sell.status_code == 201, sell.text
            buy = await on_follower.post(
                "/api/orders", json=order("buy", "100", "5"), headers=as_alice
            )
            assert buy.status_code == 201, buy.text
            assert buy.json().keys() == sell.json().keys()
            assert buy.json()["status"] == "filled" and buy.json()["avg_price"] == "5.0000"
            mine = await on_follower.get("/api/orders?status=all", headers=as_bob)
            assert [o["status"] for o in mine.json()] == ["filled"]

            # Refusals come back with the same status, code and message through either.
            resting = await on_leader.post(
                "/api/orders", json=order("sell", "10", "6"), headers=as_bob
            )
            assert resting.status_code == 201, resting.text
            for refused, code in (
                (order("buy", "10", "6", post_only=True), "post_only_would_take"),
                (order("buy", "100000", "5"), "insufficient_funds"),
            ):
                answers = [
                    await http.post("/api/orders", json=refused, headers=as_alice)
                    for http in (on_follower, on_leader)
                ]
                assert [a.status_code for a in answers] == [409, 409]
                assert answers[0].json() == answers[1].json()
                assert answers[0].json()["error"] == code

            # A client order id is the same order whichever instance sees it again.
            keyed = order("buy", "10", "4", client_order_id="bus-1")
            placed = await on_follower.post("/api/orders", json=keyed, headers=as_alice)
            assert placed.status_code == 201, placed.text
            for http in (on_leader, on_follower):
                again = await http.post("/api/orders", json=keyed, headers=as_alice)
                assert again.status_code == 200 and again.json() == placed.json()

            # Amend and cancel through the instance that forwards them.
            order_id = placed.json()["id"]
            amended = await on_follower.patch(
                f"/api/orders/{order_id}", json={"qty": "20"}, headers=as_alice
            )
            assert amended.status_code == 200 and amended.json()["qty"] == "20.00", amended.text
            cancelled = await on_follower.delete(f"/api/orders/{order_id}", headers=as_alice)
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            gone = await on_follower.delete(f"/api/orders/{order_id}", headers=as_alice)
            assert gone.status_code == 409 and gone.json()["error"] == "order_closed"

            # The faucet through the follower reaches the leader's funds mirror: Alice spends
            # USDT on Bob's resting offer, tops up, and can then place what she could not.
            spent = await on_follower.post(
                "/api/orders", json=order("buy", "10", "6"), headers=as_alice
            )
            assert spent.status_code == 201 and spent.json()["status"] == "filled", spent.text
            usdt = await _usdt(on_follower, as_alice)
            topped = await on_follower.post("/api/faucet", headers=as_alice)
            assert topped.status_code == 200, topped.text
            added = Decimal(next(t["added"] for t in topped.json() if t["asset"] == "USDT"))
            assert added > 0
            after = await _usdt(on_follower, as_alice)
            assert after["available"] == usdt["available"] + added
            mirror = _trading(leader).available(alice["id"], "USDT")
            mirrored = ASSETS["USDT"].to_units(after["available"])
            assert mirror is None or mirror == mirrored
            # More than she had before the top-up, at a price that rests.
            qty = int(usdt["available"] / 4) + 2
            more = await on_follower.post(
                "/api/orders", json=order("buy", str(qty), "4"), headers=as_alice
            )
            assert more.status_code == 201, more.text

            # Dropped connections (the reply listener's, the consumer's blocking pop) come back;
            # a request caught in between is answered 503 and retried with its client order id.
            admin = aioredis.Redis.from_url(redis_url)
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            for client in await admin.client_list():
                if client["cmd"] == "blpop":
                    await admin.client_kill_filter(_id=client["id"])
            await admin.aclose()
            keyed = order("sell", "10", "7", client_order_id="after-drop")
            for _ in range(3):
                after = await on_follower.post("/api/orders", json=keyed, headers=as_bob)
                if after.status_code != 503:
                    break
            assert after.status_code == 201, after.text


async def test_without_a_leader_forwarded_orders_answer_retry(
    redis_url: str, tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    timeout = 1.0
    async with two_instances(tmp_path, redis_url, order_timeout_seconds=timeout) as (
        first,
        second,
        prefix,
    ):
        leader, follower = await elected(first, second)
        async with follower.client() as http:
            _, headers = await signed_in(http, new_telegram_id())
            assert (await http.post("/api/faucet", headers=headers)).status_code == 200
            # Another process takes the lease for a while: no one runs the books.
            admin = aioredis.Redis.from_url(redis_url)
            await admin.set(f"{prefix}:market:feed-leader", "elsewhere", px=4000)
            await until(lambda: not _trading(leader).running)
            for server in (first, second):
                async with server.client() as on_server:
                    started = time.monotonic()
                    answer = await on_server.post(
                        "/api/orders",
                        json=order("buy", "10", "4", client_order_id="lost"),
                        headers=headers,
                    )
                    assert time.monotonic() - started < timeout + 1.5
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "retry"
                assert "client_order_id" in answer.json()["detail"]

            # The lease expires, one of them takes over, and the forwarder reaches it again.
            await elected(first, second)
            retried = await http.post(
                "/api/orders",
                json=order("buy", "10", "4", client_order_id="lost"),
                headers=headers,
            )
            assert retried.status_code == 201, retried.text
            await admin.aclose()


async def test_the_leader_drops_requests_whose_sender_gave_up(
    redis_url: str, tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    async with two_instances(tmp_path, redis_url) as (first, second, prefix):
        leader, _ = await elected(first, second)
        async with leader.client() as http:
            user, headers = await signed_in(http, new_telegram_id())
            assert (await http.post("/api/faucet", headers=headers)).status_code == 200
        admin = aioredis.Redis.from_url(redis_url)
        replies = admin.pubsub()
        channel = f"{prefix}:trading:replies:test"
        await replies.subscribe(channel)
        place = PlaceOrder(user["id"], Side.BUY, OrderType.LIMIT, 40_000, 1_000)
        for name, deadline in (("late", time.time() - 1), ("on-time", time.time() + 5)):
            ask = Ask(
                name,
                channel,
                deadline,
                "place",
                "TON-USDT",
                msgspec.Raw(msgspec.json.encode(place)),
            )
            await admin.rpush(f"{prefix}:trading:requests", msgspec.json.encode(ask))
        # FIFO: the late one is taken (and dropped) first; a moment more shows no answer for it.
        answers = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not answers:
            message = await replies.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                answers.append(msgspec.json.decode(message["data"]))
        if message := await replies.get_message(ignore_subscribe_messages=True, timeout=0.5):
            answers.append(msgspec.json.decode(message["data"]))
        await replies.aclose()
        await admin.aclose()
        assert [a["id"] for a in answers] == ["on-time"]
        assert answers[0]["created"] is True and answers[0]["order"]["status"] == "open"
        assert answers[0]["order"]["qty"] == 1_000


# What the HTTP API answered for each of the engine's reasons before refusals carried no status.
_REJECTED = {
    RejectReason.INVALID_PRICE: (400, "invalid_price"),
    RejectReason.INVALID_QUANTITY: (400, "invalid_quantity"),
    RejectReason.INVALID_ORDER: (400, "invalid_order"),
    RejectReason.BELOW_MIN_NOTIONAL: (400, "below_min_notional"),
    RejectReason.POST_ONLY_WOULD_TAKE: (409, "post_only_would_take"),
    RejectReason.FOK_NOT_FILLABLE: (409, "fok_not_fillable"),
    RejectReason.NO_LIQUIDITY: (409, "no_liquidity"),
    RejectReason.UNKNOWN_ORDER: (409, "order_closed"),
    RejectReason.NOT_OWNER: (404, "order_not_found"),
    RejectReason.DUPLICATE_ORDER_ID: (400, "invalid_order"),
}


@pytest.mark.parametrize(("reason", "expected"), _REJECTED.items())
def test_each_engine_rejection_keeps_its_status_and_code(
    reason: RejectReason, expected: tuple[int, str]
) -> None:
    refusal = rejection(reason)
    assert (status_of(refusal), refusal.code) == expected


@pytest.mark.parametrize(
    "refusal",
    [
        *(rejection(reason) for reason in RejectReason),
        InsufficientFunds("this order needs 10 USDT"),
        OrderNotFound("no such order"),
        OrderClosed("the order is filled"),
        UnknownMarket("no market 'X'"),
        MarketClosed("TON-USDT is closed to new orders"),
        FaucetOff("the faucet is for the demo only"),
        WriterUnavailable("the order book is busy"),
        TermLost("the order books moved to another process"),
        DomainError("finer than its class", code="some_code"),
    ],
    ids=lambda refusal: f"{type(refusal).__name__}-{refusal.code}",
)
def test_a_refusal_crosses_the_bus_as_the_same_error(refusal: DomainError) -> None:
    """What the forwarder raises: the class its code names, so the same HTTP answer."""
    wire = msgspec.json.encode(Answer("a", error=Refusal(refusal.code, refusal.message)))
    error = msgspec.json.decode(wire, type=Answer).error
    assert error is not None
    again = rebuilt(error.code, error.message)
    assert (again.code, again.message) == (refusal.code, refusal.message)
    assert status_of(again) == status_of(refusal)
    # TermLost shares WriterUnavailable's code ("retry"), and comes back as that.
    assert type(again) is (WriterUnavailable if isinstance(refusal, TermLost) else type(refusal))


def test_a_code_names_one_class() -> None:
    with pytest.raises(TypeError, match="order_closed"):

        class AlsoClosed(NotFound):
            code = "order_closed"
