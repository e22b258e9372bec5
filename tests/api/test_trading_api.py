"""The trading API through the real server, on SQLite and on PostgreSQL + Redis: every refusal
with its code, idempotent client order ids, what open orders hold (to the unit, with the fee
rules), amends and queue priority, market data, paging, live events, the faucet's limits.

The server is shared by the session, so its books are too: each test starts from empty books
(``books`` cancels whatever other tests left) and cancels its own orders at the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from backend.errors import DomainError
from backend.http import status_of
from backend.ledger.verify import verify
from backend.trading.commands import AmendOrder, CancelOrder, OrderClosed, OrderNotFound
from backend.trading.service import Trading
from tests.helpers import (
    REDIS_PREFIX,
    RunningServer,
    Server,
    make_settings,
    receive,
    signed_in,
    subscribe,
    temporary_database,
    ws_url,
)

TON = "TON-USDT"


@dataclass
class Trader:
    client: httpx.AsyncClient
    id: int
    auth: dict[str, str]

    async def post(self, **body: Any) -> httpx.Response:
        body.setdefault("market", TON)
        return await self.client.post("/api/orders", json=body, headers=self.auth)

    async def place(self, **body: Any) -> dict[str, Any]:
        response = await self.post(**body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def cancel(self, order_id: int) -> httpx.Response:
        return await self.client.delete(f"/api/orders/{order_id}", headers=self.auth)

    async def amend(self, order_id: int, **body: Any) -> httpx.Response:
        return await self.client.patch(f"/api/orders/{order_id}", json=body, headers=self.auth)

    async def orders(self, status: str = "open") -> list[dict[str, Any]]:
        response = await self.client.get(f"/api/orders?status={status}", headers=self.auth)
        assert response.status_code == 200, response.text
        return list(response.json())

    async def order(self, order_id: int) -> dict[str, Any]:
        return next(o for o in await self.orders("all") if o["id"] == order_id)

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """asset → (available, locked)."""
        response = await self.client.get("/api/balances", headers=self.auth)
        assert response.status_code == 200, response.text
        found = {}
        for b in response.json():
            available, locked = Decimal(b["available"]), Decimal(b["locked"])
            assert Decimal(b["total"]) == available + locked
            found[b["asset"]] = (available, locked)
        return found


NewTrader = Callable[..., Awaitable[Trader]]


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code, response.text


@pytest.fixture
async def books(server: Server) -> Trading:
    """The server's trading, running, with every book empty."""
    trading: Trading = server.app.state.resources.trading
    for _ in range(500):  # with Redis, the books start once this process is elected
        if trading.running:
            break
        await asyncio.sleep(0.02)
    assert trading.running
    for symbol, writer in trading.writers.items():
        for info in writer.desk.book.orders():
            with suppress(DomainError):
                await trading.submit(symbol, CancelOrder(info.owner, info.order_id))
        assert len(writer.desk.book) == 0
    return trading


@pytest.fixture
async def trader(
    books: Trading, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> AsyncIterator[NewTrader]:
    """Makes signed-in traders (funded by the faucet unless asked not to); cancels their
    open orders afterwards."""
    made: list[Trader] = []

    async def new(faucet: bool = True) -> Trader:
        user, auth = await signed_in(client, new_telegram_id())
        one = Trader(client, user["id"], auth)
        if faucet:
            response = await client.post("/api/faucet", headers=auth)
            assert response.status_code == 200, response.text
        made.append(one)
        return one

    yield new
    for one in made:
        for order in await one.orders():
            await one.cancel(order["id"])


async def eventually(
    client: httpx.AsyncClient, path: str, done: Callable[[Any], bool], within: float = 5
) -> Any:
    """GET ``path`` until ``done`` says yes of its body (or time is up): the last body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        body = (await client.get(path)).json()
        if done(body) or loop.time() > deadline:
            return body
        await asyncio.sleep(0.02)


async def assert_books_balance(server: Server) -> None:
    report = await verify(server.app.state.resources.db)
    assert report.ok, report.problems


# --- refusals -------------------------------------------------------------------------------

STATIC_REFUSALS = [
    # (order body, status, code)
    ({"side": "buy", "price": "2.00001", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "price": "0", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "price": "-2", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "price": "1e3", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "price": "NaN", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "price": "two", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "type": "market", "price": "2", "qty": "1"}, 400, "invalid_price"),
    ({"side": "buy", "price": "2", "qty": "0.001"}, 400, "invalid_quantity"),
    ({"side": "buy", "price": "2", "qty": "0"}, 400, "invalid_quantity"),
    ({"side": "sell", "price": "2", "qty": "-1"}, 400, "invalid_quantity"),
    ({"side": "sell", "price": "2", "qty": "1000000000"}, 400, "invalid_quantity"),
    ({"side": "sell", "price": "2", "qty": "0.01"}, 400, "below_min_notional"),
    ({"side": "buy", "price": "2", "qty": "10000"}, 409, "insufficient_funds"),
    ({"side": "sell", "price": "2", "qty": "1000.01"}, 409, "insufficient_funds"),
    ({"side": "sell", "type": "market", "qty": "1000.01"}, 409, "insufficient_funds"),
    ({"market": "XYZ-USDT", "side": "buy", "price": "2", "qty": "1"}, 400, "unknown_market"),
    (
        {"side": "buy", "price": "2", "qty": "1", "post_only": True, "tif": "IOC"},
        400,
        "invalid_order",
    ),
    ({"side": "buy", "price": "2", "qty": "1", "leverage": 10}, 400, None),
    ({"side": "hold", "price": "2", "qty": "1"}, 400, None),
]


@pytest.mark.parametrize(("body", "status", "code"), STATIC_REFUSALS)
async def test_a_refused_order_says_why_and_holds_nothing(
    trader: NewTrader, body: dict[str, Any], status: int, code: str | None
) -> None:
    me = await trader()
    before = await me.balances()
    response = await me.post(**body)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"] == code, response.text
    assert await me.balances() == before
    assert await me.orders("all") == []


async def test_refusals_that_depend_on_the_book(trader: NewTrader) -> None:
    maker, me = await trader(), await trader()
    await maker.place(side="sell", price="2.0000", qty="1")
    await maker.place(side="buy", price="1.9000", qty="1")
    before = await me.balances()
    post_only = await me.post(side="buy", price="2.0000", qty="1", post_only=True)
    refused(post_only, 409, "post_only_would_take")
    refused(await me.post(side="buy", price="2.0000", qty="2", tif="FOK"), 409, "fok_not_fillable")
    # A market order on a side with nothing on it, here and in an empty market.
    refused(
        await me.post(market="BNB-USDT", side="buy", type="market", qty="1"), 409, "no_liquidity"
    )
    sell = await me.post(market="BNB-USDT", side="sell", type="market", qty="1")
    refused(sell, 409, "no_liquidity")
    assert await me.balances() == before and await me.orders("all") == []
    # The book is as it was: one ask of 1 TON at 2, one bid at 1.9.
    assert [o["filled"] for o in await maker.orders()] == ["0.00", "0.00"]


async def test_unknown_markets_and_orders(client: httpx.AsyncClient, trader: NewTrader) -> None:
    owner, other = await trader(), await trader()
    refused(await client.get("/api/markets/XYZ-USDT/book"), 404, "unknown_market")
    refused(await client.get("/api/markets/XYZ-USDT/trades"), 404, "unknown_market")
    order = await owner.place(side="buy", price="1.0000", qty="1")
    # Someone else's order, and one that does not exist, are not found.
    refused(await other.cancel(order["id"]), 404, "order_not_found")
    refused(await other.amend(order["id"], qty="0.5"), 404, "order_not_found")
    refused(await other.cancel(2**62), 404, "order_not_found")
    assert (await owner.order(order["id"]))["status"] == "open"
    # A filled order is closed.
    taken = await other.place(side="sell", price="1.0000", qty="1")
    assert taken["status"] == "filled"
    refused(await owner.cancel(order["id"]), 409, "order_closed")
    refused(await other.cancel(taken["id"]), 409, "order_closed")
    refused(await owner.amend(order["id"], price="1.1"), 409, "order_closed")


async def test_a_cancel_or_amend_that_loses_the_race_with_a_fill_is_order_closed(
    books: Trading, trader: NewTrader
) -> None:
    """The route reads the order open, then a fill closes it before the command reaches the
    book: what the book answers then is the documented 409, not a 404."""
    owner, taker = await trader(), await trader()
    orders = [await owner.place(side="buy", price="1.0000", qty="1") for _ in range(2)]
    assert (await taker.place(side="sell", price="1.0000", qty="2"))["status"] == "filled"
    commands = [
        CancelOrder(owner.id, orders[0]["id"]),
        AmendOrder(owner.id, orders[1]["id"], None, 50),
    ]
    for command in commands:
        with pytest.raises(OrderClosed) as lost:
            await books.submit(TON, command)
        assert status_of(lost.value) == 409 and lost.value.code == "order_closed"
    # Someone else's open order is still not found, however it is asked.
    mine = await owner.place(side="buy", price="1.0000", qty="1")
    with pytest.raises(OrderNotFound):
        await books.submit(TON, CancelOrder(taker.id, mine["id"]))


async def test_orders_need_a_session(client: httpx.AsyncClient) -> None:
    body = {"market": TON, "side": "buy", "price": "2", "qty": "1"}
    for response in (
        await client.post("/api/orders", json=body),
        await client.get("/api/orders"),
        await client.delete("/api/orders/1"),
        await client.patch("/api/orders/1", json={"qty": "1"}),
        await client.get("/api/trades"),
        await client.post("/api/faucet"),
    ):
        refused(response, 401, "unauthorized")


# --- holds, fills, fees ---------------------------------------------------------------------


async def test_open_orders_hold_funds_and_give_them_back_exactly(trader: NewTrader) -> None:
    me = await trader()
    start = await me.balances()
    assert start["USDT"] == (Decimal(10000), 0) and start["TON"] == (Decimal(1000), 0)
    # 10 TON at 1.5: 15 USDT + the 0.2% taker fee (0.03) + 0.001 for per-fill fee rounding.
    bid = await me.place(side="buy", price="1.5000", qty="10")
    ask = await me.place(side="sell", price="3.0000", qty="2.5")
    held = await me.balances()
    assert held["USDT"] == (Decimal("9984.969"), Decimal("15.031"))
    assert held["TON"] == (Decimal("997.5"), Decimal("2.5"))
    assert {o["id"] for o in await me.orders()} == {bid["id"], ask["id"]}
    for order in (bid, ask):
        response = await me.cancel(order["id"])
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert await me.balances() == start
    assert await me.orders() == []


async def test_a_partial_fill_then_a_cancel_adds_up_to_the_unit(
    server: Server, trader: NewTrader
) -> None:
    """Buyer rests 10 TON at 2; seller takes 4 (value 8 USDT): the maker pays 10 bps (0.008),
    the taker 20 bps (0.016); the buyer's cancel gives back the rest of the hold."""
    buyer, seller = await trader(), await trader()
    bid = await buyer.place(side="buy", price="2.0000", qty="10")
    assert (await buyer.balances())["USDT"] == (Decimal("9979.959"), Decimal("20.041"))
    sold = await seller.place(side="sell", price="2.0000", qty="4")
    assert (sold["status"], sold["filled"], sold["fee"], sold["avg_price"]) == (
        "filled",
        "4.00",
        "0.016",
        "2.0000",
    )
    mid = await buyer.balances()
    assert mid["USDT"] == (Decimal("9979.959"), Decimal("12.033"))
    assert mid["TON"] == (Decimal("1004"), 0)
    after_sale = await seller.balances()
    assert after_sale["USDT"] == (Decimal("10007.984"), 0)
    assert after_sale["TON"] == (Decimal("996"), 0)

    cancelled = (await buyer.cancel(bid["id"])).json()
    assert (cancelled["status"], cancelled["filled"], cancelled["fee"]) == (
        "cancelled",
        "4.00",
        "0.008",
    )
    assert (await buyer.balances())["USDT"] == (Decimal("9991.992"), 0)

    # A taker buy whose limit is above the ask trades at the ask and gets the difference back.
    await seller.place(side="sell", price="2.0000", qty="5")
    bought = await buyer.place(side="buy", price="2.0100", qty="5")
    assert (bought["status"], bought["avg_price"], bought["fee"]) == ("filled", "2.0000", "0.02")
    assert (await buyer.balances())["USDT"] == (Decimal("9991.992") - Decimal("10.02"), 0)
    assert (await seller.balances())["USDT"] == (Decimal("10007.984") + Decimal("9.99"), 0)
    await assert_books_balance(server)


async def test_a_market_buy_spends_only_what_it_can_pay_for(
    books: Trading, trader: NewTrader
) -> None:
    seller = await trader()
    poor = await trader(faucet=False)
    await books.top_up(poor.id, ["USDT"], to={"USDT": Decimal("3")})
    await seller.place(side="sell", price="1.0000", qty="10")
    bought = await poor.place(side="buy", type="market", qty="10")
    # 3 USDT pays for 2.99 TON at 1 and its 0.2% fee (2.99598), not for 3.
    assert (bought["status"], bought["filled"], bought["fee"]) == ("expired", "2.99", "0.00598")
    assert (await poor.balances())["USDT"] == (Decimal("0.00402"), 0)
    assert (await poor.balances())["TON"] == (Decimal("2.99"), 0)
    # With money to spare, a market buy takes all it asks for.
    rich = await trader()
    all_of_it = await rich.place(side="buy", type="market", qty="7.01")
    assert (all_of_it["status"], all_of_it["filled"]) == ("filled", "7.01")
    assert (await rich.balances())["USDT"] == (Decimal("10000") - Decimal("7.02402"), 0)


# --- idempotency ----------------------------------------------------------------------------


async def test_a_client_order_id_places_one_order_per_market(trader: NewTrader) -> None:
    me = await trader()
    body = {"side": "buy", "price": "1.0000", "qty": "5", "client_order_id": "mine-1"}
    first = await me.post(**body)
    assert first.status_code == 201
    locked = (await me.balances())["USDT"]
    again = await me.post(**body)
    assert again.status_code == 200 and again.json() == first.json()
    # Same id, different details: still the first order, nothing more held.
    different = await me.post(**(body | {"price": "1.1000", "qty": "9"}))
    assert different.status_code == 200 and different.json()["id"] == first.json()["id"]
    assert (await me.balances())["USDT"] == locked
    # In another market the same id is a new order.
    other = await me.post(
        market="ETH-USDT", side="buy", price="1000.00", qty="0.01", client_order_id="mine-1"
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # Sent twice at once: one order, answered to both.
    twice = {"side": "sell", "price": "9.0000", "qty": "1", "client_order_id": "mine-2"}
    responses = await asyncio.gather(me.post(**twice), me.post(**twice))
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert (await me.balances())["TON"] == (Decimal(999), Decimal(1))
    assert len(await me.orders()) == 3
    # Once closed, the id still answers with that order.
    placed = first.json()
    await me.cancel(placed["id"])
    closed = await me.post(**body)
    assert closed.status_code == 200 and closed.json()["status"] == "cancelled"


# --- amend and priority ---------------------------------------------------------------------


async def test_amends_keep_or_lose_queue_priority(trader: NewTrader) -> None:
    a, b, taker = await trader(), await trader(), await trader()
    # Shrinking in place keeps the place in the queue.
    a1 = await a.place(side="sell", price="2.0000", qty="1")
    b1 = await b.place(side="sell", price="2.0000", qty="1")
    shrunk = await a.amend(a1["id"], qty="0.5")
    assert shrunk.status_code == 200 and shrunk.json()["qty"] == "0.50"
    assert (await a.balances())["TON"][1] == Decimal("0.5")
    await taker.place(side="buy", price="2.0000", qty="0.5")
    assert (await a.order(a1["id"]))["status"] == "filled"
    assert (await b.order(b1["id"]))["filled"] == "0.00"
    await b.cancel(b1["id"])

    # A new price (even back to the old one) sends it to the back.
    a2 = await a.place(side="sell", price="2.0000", qty="1")
    b2 = await b.place(side="sell", price="2.0000", qty="1")
    moved = await a.amend(a2["id"], price="2.0001")
    assert moved.status_code == 200 and moved.json()["price"] == "2.0001"
    assert (await a.amend(a2["id"], price="2.0000")).status_code == 200
    await taker.place(side="buy", price="2.0000", qty="1")
    assert (await b.order(b2["id"]))["status"] == "filled"
    assert (await a.order(a2["id"]))["filled"] == "0.00"

    # So does growing it.
    b3 = await b.place(side="sell", price="2.0000", qty="1")
    assert (await a.amend(a2["id"], qty="1.5")).status_code == 200
    await taker.place(side="buy", price="2.0000", qty="1")
    assert (await b.order(b3["id"]))["status"] == "filled"
    assert (await a.order(a2["id"]))["filled"] == "0.00"
    assert (await a.balances())["TON"][1] == Decimal("1.5")


async def test_an_amend_needing_more_than_is_available_is_refused(trader: NewTrader) -> None:
    me, seller = await trader(), await trader()
    bid = await me.place(side="buy", price="2.0000", qty="10")
    before = await me.balances()
    refused(await me.amend(bid["id"], qty="10000"), 409, "insufficient_funds")
    refused(await me.amend(bid["id"], price="2000.0000"), 409, "insufficient_funds")
    refused(await me.amend(bid["id"], price="2.00001"), 400, "invalid_price")
    refused(await me.amend(bid["id"], qty="0.001"), 400, "invalid_quantity")
    assert await me.balances() == before
    unchanged = await me.order(bid["id"])
    assert (unchanged["price"], unchanged["qty"]) == ("2.0000", "10.00")
    # An amend below what has filled is refused; to exactly what is left is fine.
    await seller.place(side="sell", price="2.0000", qty="4")
    refused(await me.amend(bid["id"], qty="3"), 400, "invalid_quantity")
    # Moving the price down gives back the difference at once.
    lower = await me.amend(bid["id"], price="1.0000")
    assert lower.status_code == 200
    # 6 TON left at 1: 6 + 0.012 fee + 0.0006 rounding.
    assert (await me.balances())["USDT"][1] == Decimal("6.0126")


# --- my trades, market trades, candles -------------------------------------------------------


async def test_my_trades_come_newest_first_a_page_at_a_time(trader: NewTrader) -> None:
    maker, me = await trader(), await trader()
    for price in ("2.0000", "2.0001", "2.0002"):
        await maker.place(side="sell", price=price, qty="1")
    taken = await me.place(side="buy", price="2.0002", qty="3")
    assert taken["status"] == "filled"
    first = (await me.client.get("/api/trades?limit=2", headers=me.auth)).json()
    assert [t["price"] for t in first["trades"]] == ["2.0002", "2.0001"]
    assert first["next"] == first["trades"][-1]["trade_id"]
    rest = (
        await me.client.get(f"/api/trades?limit=2&before={first['next']}", headers=me.auth)
    ).json()
    assert [t["price"] for t in rest["trades"]] == ["2.0000"] and rest["next"] is None
    mine = first["trades"] + rest["trades"]
    assert {(t["side"], t["liquidity"], t["order_id"]) for t in mine} == {
        ("buy", "taker", taken["id"])
    }
    assert [t["fee"] for t in mine] == ["0.004001", "0.004001", "0.004"]
    theirs = (await maker.client.get("/api/trades?market=TON-USDT", headers=maker.auth)).json()
    assert [(t["side"], t["liquidity"], t["fee"]) for t in theirs["trades"]] == [
        ("sell", "maker", "0.002001"),
        ("sell", "maker", "0.002001"),
        ("sell", "maker", "0.002"),
    ]
    assert [t["trade_id"] for t in theirs["trades"]] == [t["trade_id"] for t in mine]
    none = (await me.client.get("/api/trades?market=ETH-USDT", headers=me.auth)).json()
    assert none == {"trades": [], "next": None}


async def test_market_trades_candles_and_book_show_what_happened(
    client: httpx.AsyncClient, trader: NewTrader
) -> None:
    maker, taker = await trader(), await trader()
    market = "BNB-USDT"
    await maker.place(market=market, side="sell", price="600.00", qty="0.1")
    await maker.place(market=market, side="sell", price="600.50", qty="0.2")
    await maker.place(market=market, side="buy", price="590.00", qty="0.3")
    await taker.place(market=market, side="buy", price="600.50", qty="0.15")
    await taker.place(market=market, side="sell", type="market", qty="0.05")

    trades = (await client.get(f"/api/markets/{market}/trades?limit=200")).json()
    assert [(t["price"], t["qty"], t["side"]) for t in trades[:3]] == [
        ("590.00", "0.050", "sell"),
        ("600.50", "0.050", "buy"),
        ("600.00", "0.100", "buy"),
    ]
    assert trades[0]["id"] > trades[1]["id"] > trades[2]["id"]

    # The current minute's candle is made of exactly that minute's trades.
    candles = (await client.get(f"/api/markets/{market}/candles?tf=1m")).json()
    last = candles[-1]
    minute = [t for t in trades if t["at"] // 60_000 * 60 == last["open_time"]]
    minute.sort(key=lambda t: t["id"])
    prices = [Decimal(t["price"]) for t in minute]
    assert minute and minute[-1]["id"] == trades[0]["id"]
    assert Decimal(last["open"]) == prices[0] and Decimal(last["close"]) == prices[-1]
    assert Decimal(last["high"]) == max(prices) and Decimal(last["low"]) == min(prices)
    assert Decimal(last["volume"]) == sum(Decimal(t["qty"]) for t in minute)
    assert last["trades"] == len(minute)

    # The book is read from what the hub last published: announced just after the commit.
    want = {"market": market, "bids": [["590.00", "0.250"]], "asks": [["600.50", "0.150"]]}
    book = await eventually(client, f"/api/markets/{market}/book", lambda book: book == want)
    assert book == want
    listed = {m["symbol"]: m for m in (await client.get("/api/markets")).json()}
    assert listed[market] | {"last_price": None} == {
        "symbol": market,
        "base": "BNB",
        "quote": "USDT",
        "tick_size": "0.01",
        "lot_size": "0.001",
        "min_notional": "1",
        "maker_fee_bps": 10,
        "taker_fee_bps": 20,
        "price_decimals": 2,
        "qty_decimals": 3,
        "last_price": None,
        "best_bid": "590.00",
        "best_ask": "600.50",
    }
    assert listed[market]["last_price"] == "590.00"
    assert (await client.get("/api/markets/TON-USDT/candles?tf=5m")).status_code == 400


# --- live -----------------------------------------------------------------------------------


async def test_fills_reach_the_trader_and_the_book_live(server: Server, trader: NewTrader) -> None:
    """After the commit: the trader's topic gets the batch's changes to their orders and their
    fills in one ``trading`` event; the book's topic a delta of the level that changed."""
    maker, me = await trader(), await trader()
    ask = await maker.place(side="sell", price="2.5000", qty="3")
    async with websockets.connect(ws_url(server), additional_headers=me.auth) as ws:
        await subscribe(ws, f"user:{me.id}")
        await subscribe(ws, f"book:{TON}")
        bought = await me.place(side="buy", price="2.5000", qty="1")
        trading, delta = None, None
        while trading is None or delta is None:
            frame = await receive(ws)
            if frame["topic"] == f"book:{TON}" and frame["type"] == "delta":
                delta = frame["data"]
            elif frame["topic"] == f"user:{me.id}" and frame["data"]["type"] == "trading":
                trading = frame["data"]
    [order] = trading["orders"]
    [fill] = trading["fills"]
    assert (order["id"], order["status"], order["filled"]) == (bought["id"], "filled", "1.00")
    assert (fill["order_id"], fill["side"], fill["price"], fill["qty"]) == (
        bought["id"],
        "buy",
        "2.5000",
        "1.00",
    )
    assert (fill["liquidity"], fill["fee"], fill["market"]) == ("taker", "0.005", TON)
    assert delta == {"bids": [], "asks": [["2.5000", "2.00"]]}
    # The maker's topic is theirs alone.
    async with websockets.connect(ws_url(server), additional_headers=me.auth) as ws:
        await ws.send(json.dumps({"op": "subscribe", "topics": [f"user:{maker.id}"]}))
        answer = await receive(ws)
    assert (answer["op"], answer["code"]) == ("error", "forbidden"), answer
    assert (await maker.order(ask["id"]))["filled"] == "1.00"


# --- the faucet and limits, on servers of their own -----------------------------------------


async def test_the_faucet_is_off_when_configured_off(
    tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    settings = make_settings(tmp_path, trading={"faucet": False})
    async with RunningServer(settings) as server, server.client() as client:
        _, auth = await signed_in(client, new_telegram_id())
        refused(await client.post("/api/faucet", headers=auth), 403, "faucet_off")
        balances = (await client.get("/api/balances", headers=auth)).json()
        assert all(Decimal(b["total"]) == 0 for b in balances)


async def test_the_faucet_is_off_in_production(
    tmp_path: Path, redis_url: str, new_telegram_id: Callable[[], int]
) -> None:
    async with temporary_database() as url:
        settings = make_settings(
            tmp_path,
            app={"env": "production"},
            bot={"webhook_secret": "w" * 40},
            database={"url": url},
            redis={"url": redis_url, "key_prefix": f"{REDIS_PREFIX}-production"},
        )
        assert settings.trading.faucet  # the setting says yes; production says no
        async with RunningServer(settings) as server, server.client() as client:
            _, auth = await signed_in(client, new_telegram_id())
            refused(await client.post("/api/faucet", headers=auth), 403, "faucet_off")


async def test_order_writes_are_rate_limited(
    tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    settings = make_settings(tmp_path, ratelimit={"write_per_user": "3/minute"})
    async with RunningServer(settings) as server, server.client() as client:
        _, auth = await signed_in(client, new_telegram_id())
        assert (await client.post("/api/faucet", headers=auth)).status_code == 200
        body = {"market": TON, "side": "buy", "price": "1", "qty": "1"}
        for _ in range(2):
            response = await client.post("/api/orders", json=body, headers=auth)
            assert response.status_code == 201, response.text
        response = await client.post("/api/orders", json=body, headers=auth)
        refused(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1
        # Reading is not limited.
        open_orders = await client.get("/api/orders", headers=auth)
        assert open_orders.status_code == 200 and len(open_orders.json()) == 2
