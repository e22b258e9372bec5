"""Trading driven directly: a ``Trading`` on a bare database (SQLite and PostgreSQL) with an
in-memory hub, and the books it keeps checked against each other after random order streams.

What must hold whatever users do: the ledger verifies; escrow holds exactly what the open
orders say they hold; every unit the faucet minted is in a user's balance, escrow or fees;
each user's money moved exactly as their trades say; the orders table, the writer's open
orders and the book agree; and a restart rebuilds the very same book.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from backend.config import TradingSettings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import DomainError
from backend.hub.backends.memory import MemoryBackend
from backend.hub.hub import Hub
from backend.i18n import translator
from backend.ledger.domain import Balance, system_account, user_account
from backend.ledger.service import Ledger
from backend.ledger.verify import verify
from backend.notify.messages import render
from backend.notify.models import Notification
from backend.trading import queries
from backend.trading.commands import (
    AmendOrder,
    CancelOrder,
    OrderClosed,
    PlaceOrder,
    Request,
)
from backend.trading.desk import Desk
from backend.trading.engine import OrderType, SelfTrade, Side, TimeInForce
from backend.trading.models import Order, OrderStatus, TradeRecord
from backend.trading.orders import limit_hold
from backend.trading.service import MarketClosed, Trading
from backend.trading.writer import Outcome, WriterUnavailable
from backend.users.service import TelegramProfile, sign_in
from tests.conftest import BACKENDS
from tests.test_ledger import counters as accounts
from tests.test_ledger import open_database

TRADED = ("USDT", "TON", "ETH", "BNB")
# Small enough that a stream of a few dozen commands stores snapshots *and* replays a journal.
SNAPSHOT_EVERY = 10
_telegram_ids = itertools.count(7_000_000)


# --- a Trading of our own -------------------------------------------------------------------


@dataclass
class Desks:
    """A running ``Trading`` and the writer tasks it spawned (which a crash cancels)."""

    db: Database
    trading: Trading
    ledger: Ledger
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def crash(self) -> None:
        """Stop the writers where they stand: no drain, no graceful shutdown."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def submit(self, symbol: str, request: Request) -> Outcome:
        return await self.trading.submit(symbol, request)


async def settled(desks: Desks, symbol: str = "TON-USDT") -> None:
    """Returns once ``symbol``'s writer has done all it was doing (a failed batch answers
    "retry" first and rebuilds after): a request it refuses at once goes through its queue."""
    with pytest.raises(OrderClosed):  # no order 0 on the book
        await desks.submit(symbol, CancelOrder(0, 0))


def trading_settings(**overrides: Any) -> TradingSettings:
    values: dict[str, Any] = {"snapshot_every": SNAPSHOT_EVERY, "market_maker": False}
    return TradingSettings(**(values | overrides))


@asynccontextmanager
async def running(
    db: Database,
    config: TradingSettings | None = None,
    ledger: Ledger | None = None,
) -> AsyncIterator[Desks]:
    """Trading started on ``db`` (books recovered from it); crashed, not stopped, at the end."""
    hub = Hub(MemoryBackend())
    await hub.start()
    ledger = ledger or Ledger()
    trading = Trading(db, ledger, hub, config or trading_settings())
    desks = Desks(db, trading, ledger)

    def spawn(job: Coroutine[Any, Any, None], name: str) -> None:
        desks.tasks.append(asyncio.create_task(job, name=name))

    await trading.start(spawn)
    try:
        yield desks
    finally:
        await desks.crash()
        await hub.close()


async def make_users(db: Database, count: int) -> list[int]:
    ids = []
    async with unit_of_work(db) as uow:
        for _ in range(count):
            telegram_id = next(_telegram_ids)
            user = (await sign_in(uow, TelegramProfile(telegram_id, f"t{telegram_id}"))).user
            assert user.id is not None
            ids.append(user.id)
    return ids


Minted = defaultdict[int, Counter[str]]
"""What the faucet gave each user, per asset."""


async def top_up(trading: Trading, user: int, minted: Minted) -> None:
    for topped in await trading.top_up(user):
        minted[user][topped.asset] += topped.amount


async def grant(desks: Desks, user: int, asset: str, amount: str, minted: Minted) -> None:
    """Faucet money of an exact amount: the faucet tops up to the level it is given."""
    for topped in await desks.trading.top_up(user, [asset], to={asset: Decimal(amount)}):
        minted[user][topped.asset] += topped.amount


# --- reading the books ----------------------------------------------------------------------


def posted(account: tuple[int, int, int, int] | None) -> int:
    """credits_posted - debits_posted."""
    return 0 if account is None else account[3] - account[1]


async def all_orders(db: Database) -> list[Order]:
    async with db.reads() as session:
        return list((await session.exec(select(Order).order_by(Order.id))).all())  # type: ignore[arg-type]


async def all_trades(db: Database) -> list[TradeRecord]:
    async with db.reads() as session:
        return list((await session.exec(select(TradeRecord).order_by(TradeRecord.id))).all())  # type: ignore[arg-type]


async def balance_of(db: Database, user: int, asset: str) -> int:
    return posted((await accounts(db)).get(user_account(user, asset)))


async def assert_consistent(desks: Desks, minted: Minted) -> None:
    """Every invariant the trading books keep, checked against each other."""
    db, trading = desks.db, desks.trading
    report = await verify(db)
    assert report.ok, report.problems
    ledger = await accounts(db)
    orders = await all_orders(db)
    trades = await all_trades(db)
    open_rows = [o for o in orders if o.status == OrderStatus.OPEN.value]

    # No user balance below zero, nothing pending.
    for key, (pending, _dpo, _cp, _cpo) in ledger.items():
        if key.startswith("user:"):
            assert posted(ledger[key]) >= 0 and pending == 0, (key, ledger[key])

    for asset in TRADED:
        escrow = posted(ledger.get(system_account("escrow", asset)))
        fees = posted(ledger.get(system_account("fees", asset)))
        faucet = posted(ledger.get(system_account("faucet", asset)))
        users = sum(
            posted(value)
            for key, value in ledger.items()
            if key.startswith("user:") and key.endswith(f":{asset}")
        )
        held = sum(o.reserved for o in open_rows if o.reserve_asset == asset)
        assert escrow == held, f"{asset}: escrow {escrow} but open orders hold {held}"
        # Conservation: what the faucet minted is with the users, in escrow or in fees.
        minted_total = sum(gifts[asset] for gifts in minted.values())
        assert -faucet == minted_total, (asset, faucet, minted_total)
        assert users + escrow + fees == minted_total, (asset, users, escrow, fees)

    # Fees: the ledger's fee accounts hold exactly the trades' fees.
    fee_total = sum(t.maker_fee + t.taker_fee for t in trades)
    assert posted(ledger.get(system_account("fees", "USDT"))) == fee_total

    # Each user's own money moved exactly as their trades say.
    expected: defaultdict[int, Counter[str]] = defaultdict(Counter)
    for user, gifts in minted.items():
        expected[user].update(gifts)
    by_id = {o.id: o for o in orders}
    for t in trades:
        market = trading.markets[t.market]
        base, quote = market.base.code, market.quote.code
        units = t.qty * market.spec.base_units_per_lot
        taker_buys = t.taker_side == Side.BUY.value
        buyer, seller = (
            (t.taker_user_id, t.maker_user_id) if taker_buys else (t.maker_user_id, t.taker_user_id)
        )
        buyer_fee, seller_fee = (
            (t.taker_fee, t.maker_fee) if taker_buys else (t.maker_fee, t.taker_fee)
        )
        expected[buyer][base] += units
        expected[buyer][quote] -= t.value + buyer_fee
        expected[seller][base] -= units
        expected[seller][quote] += t.value - seller_fee
        assert t.maker_fee == market.spec.maker_fee(t.value)
        assert t.taker_fee == market.spec.taker_fee(t.value)
        assert t.value == market.spec.value(t.price, t.qty)
        assert by_id[t.maker_order_id].user_id == t.maker_user_id
        assert by_id[t.taker_order_id].user_id == t.taker_user_id
    for user, wanted in expected.items():
        for asset in TRADED:
            in_orders = sum(
                o.reserved for o in open_rows if o.user_id == user and o.reserve_asset == asset
            )
            have = posted(ledger.get(user_account(user, asset))) + in_orders
            assert have == wanted[asset], (user, asset, have, wanted[asset])

    # Each order: filled within its size, fills and fees as its trades say; closed ones hold
    # nothing, open ones hold what their rest may still need.
    fills: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in trades:
        for order_id, fee in ((t.maker_order_id, t.maker_fee), (t.taker_order_id, t.taker_fee)):
            fills[order_id][0] += t.qty
            fills[order_id][1] += t.value
            fills[order_id][2] += fee
    for o in orders:
        spec = trading.markets[o.market].spec
        assert 0 <= o.filled <= o.qty, o
        assert [o.filled, o.cost, o.fee] == fills[o.id], o
        if o.status != OrderStatus.OPEN.value:
            assert o.reserved == 0, o
        elif o.side == Side.SELL.value:
            assert o.reserved == (o.qty - o.filled) * spec.base_units_per_lot, o
        else:
            value = spec.value(o.price, o.qty - o.filled)
            assert o.reserved >= value + spec.taker_fee(value), o
            assert o.reserved <= limit_hold(spec, Side.BUY, o.price, o.qty), o

    # The orders table, the writers' open orders and the books agree.
    for symbol, writer in trading.writers.items():
        rows = {o.id: o for o in open_rows if o.market == symbol}
        book = {info.order_id: info for info in writer.desk.book.orders()}
        assert set(book) == set(rows), symbol
        for order_id, info in book.items():
            row = rows[order_id]
            assert (info.owner, info.side.value, info.price, info.qty, info.open) == (
                row.user_id,
                row.side,
                row.price,
                row.qty,
                row.qty - row.filled,
            ), (info, row)
        desk = writer.desk
        assert set(desk.orders) == set(rows)
        for order_id, state in desk.orders.items():
            assert (state.reserved, state.filled, state.qty, state.status.value) == (
                rows[order_id].reserved,
                rows[order_id].filled,
                rows[order_id].qty,
                rows[order_id].status,
            )
        bids, asks = writer.desk.book.depth(1)
        if bids and asks:
            assert bids[0][0] < asks[0][0], f"{symbol}: crossed book"
    held: Counter[tuple[int, str]] = Counter()
    for o in open_rows:
        held[(o.user_id, o.reserve_asset)] += o.reserved
    in_memory = Counter()
    for writer in trading.writers.values():
        in_memory.update(writer.desk.held)
    assert +in_memory == +held

    # The funds mirror never shows more, or less, than the ledger (nothing is in flight now).
    for user in minted:
        for asset in TRADED:
            if trading.funds.known((user, asset)):
                mirror = trading.funds.available((user, asset))
                account = posted(ledger.get(user_account(user, asset)))
                assert mirror == account, ((user, asset), mirror, account)


def desk_state(desk: Desk) -> dict[str, Any]:
    """A market's book (its full snapshot), open orders and holds."""
    orders = {
        order_id: {k: v for k, v in order.row().items() if k not in ("created_at", "updated_at")}
        for order_id, order in desk.orders.items()
    }
    return {"book": desk.book.snapshot(), "orders": orders, "held": +Counter(desk.held)}


def book_state(desks: Desks) -> dict[str, Any]:
    """Every market's ``desk_state``."""
    return {symbol: desk_state(writer.desk) for symbol, writer in desks.trading.writers.items()}


@asynccontextmanager
async def fresh_database(kind: str) -> AsyncIterator[Database]:
    """A new database for one hypothesis example (the fixtures are per test, not per example)."""
    async with AsyncExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        yield await open_database(stack, kind, Path(folder))


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with AsyncExitStack() as stack:
        yield await open_database(stack, request.param, tmp_path)


def place(user: int, side: str, price: int, qty: int, **extra: Any) -> PlaceOrder:
    return PlaceOrder(user, Side(side), OrderType.LIMIT, price, qty, **extra)


# --- examples -------------------------------------------------------------------------------


async def test_a_fill_moves_money_through_escrow_to_the_unit(db: Database) -> None:
    """Buyer rests, seller takes part of it, buyer cancels: every unit where the fee rules say."""
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        buyer, seller = await make_users(db, 2)
        for user in (buyer, seller):
            await top_up(desks.trading, user, minted)
        usdt_before = await balance_of(db, buyer, "USDT")
        # 10 TON at 2.0000: 20 USDT, + 0.04 taker fee, + 1,000 units for per-fill rounding.
        bid = await desks.submit("TON-USDT", place(buyer, "buy", 20_000, 1_000))
        assert bid.created and bid.order.reserved == 20_041_000
        assert desks.trading.held(buyer, "USDT") == 20_041_000
        assert await balance_of(db, buyer, "USDT") == usdt_before - 20_041_000

        ask = await desks.submit(
            "TON-USDT", PlaceOrder(seller, Side.SELL, OrderType.MARKET, 0, 400)
        )
        assert ask.order.status is OrderStatus.FILLED and ask.order.fee == 16_000
        # 4 TON for 8 USDT: the maker (buyer) pays 0.008, the taker (seller) 0.016.
        assert desks.trading.held(buyer, "USDT") == 20_041_000 - 8_008_000
        await desks.submit("TON-USDT", CancelOrder(buyer, bid.order.id))
        assert desks.trading.held(buyer, "USDT") == 0
        assert await balance_of(db, buyer, "USDT") == usdt_before - 8_008_000
        assert await balance_of(db, buyer, "TON") == minted[buyer]["TON"] + 4 * 10**9
        assert await balance_of(db, seller, "USDT") == minted[seller]["USDT"] + 7_984_000
        assert await balance_of(db, seller, "TON") == minted[seller]["TON"] - 4 * 10**9
        assert posted((await accounts(db)).get(system_account("fees", "USDT"))) == 24_000
        await assert_consistent(desks, minted)


async def test_a_halted_market_refuses_new_orders_and_amends_but_takes_cancels(
    db: Database,
) -> None:
    minted: Minted = defaultdict(Counter)
    async with running(db, trading_settings(halted=["ETH-USDT"])) as desks:
        (user,) = await make_users(db, 1)
        await top_up(desks.trading, user, minted)
        bid = await desks.submit("TON-USDT", place(user, "buy", 20_000, 100))
        with pytest.raises(MarketClosed):
            await desks.submit("ETH-USDT", place(user, "buy", 300_000, 100))
        # Halting TON-USDT now: the resting bid can be cancelled, not amended.
        desks.trading.settings.halted.append("TON-USDT")
        with pytest.raises(MarketClosed) as closed:
            await desks.submit("TON-USDT", AmendOrder(user, bid.order.id, price=20_001))
        assert closed.value.code == "market_closed" and closed.value.status_code == 409
        done = await desks.submit("TON-USDT", CancelOrder(user, bid.order.id))
        assert done.order.status is OrderStatus.CANCELLED
        await assert_consistent(desks, minted)


async def test_a_restarted_process_publishes_the_recovered_book(db: Database) -> None:
    """The hub keeps no state across a restart of the embedded default: the books must say
    what they hold again, or the REST book and new subscribers would see it empty."""
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        (user,) = await make_users(db, 1)
        await top_up(desks.trading, user, minted)
        await desks.submit("TON-USDT", place(user, "buy", 20_000, 300))
        await desks.submit("TON-USDT", place(user, "sell", 21_000, 200))
    async with running(db) as desks:
        market = desks.trading.market("TON-USDT")
        shown = await queries.book(desks.trading.announcer.hub.backend, market, 20)
        assert shown["bids"] == [["2.0000", "3.00"]]
        assert shown["asks"] == [["2.1000", "2.00"]]


async def test_the_faucet_counts_what_orders_hold_and_tops_up_once_at_a_time(
    db: Database,
) -> None:
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        (user,) = await make_users(db, 1)
        await top_up(desks.trading, user, minted)
        # A resting bid holds most of the USDT: asking again mints nothing.
        await desks.submit("TON-USDT", place(user, "buy", 20_000, 200_000))
        again = {t.asset: t.amount for t in await desks.trading.top_up(user)}
        assert again["USDT"] == 0
        # Two top-ups at once after a spend: the second sees the first's deposit.
        await desks.submit("TON-USDT", CancelOrder(user, 1))
        (seller,) = await make_users(db, 1)
        await top_up(desks.trading, seller, minted)
        await desks.submit("TON-USDT", place(seller, "sell", 20_000, 10_000))
        before = await balance_of(db, user, "USDT")
        await desks.submit("TON-USDT", place(user, "buy", 20_000, 10_000, tif=TimeInForce.IOC))
        spent = before - await balance_of(db, user, "USDT")
        assert spent > 0
        twice = await asyncio.gather(desks.trading.top_up(user), desks.trading.top_up(user))
        for answer in twice:
            for topped in answer:
                minted[user][topped.asset] += topped.amount
        assert sum(t.amount for answer in twice for t in answer if t.asset == "USDT") == spent
        await assert_consistent(desks, minted)


async def test_fills_queue_order_filled_messages_in_the_batch_but_not_for_the_maker_bot(
    db: Database,
) -> None:
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        buyer, seller, bot = await make_users(db, 3)
        for user in (buyer, seller, bot):
            await top_up(desks.trading, user, minted)
        await desks.submit("TON-USDT", place(seller, "sell", 52_000, 150))
        await desks.submit("TON-USDT", place(buyer, "buy", 52_000, 150))
        desks.trading.silent.add(bot)
        await desks.submit("TON-USDT", place(bot, "sell", 52_100, 100))
        await desks.submit("TON-USDT", place(buyer, "buy", 52_100, 100))
        async with db.reads() as session:
            rows = (
                await session.exec(
                    select(Notification)
                    .where(col(Notification.kind) == "order_filled")
                    .order_by(col(Notification.id))
                )
            ).all()
        seen = [(row.user_id, row.payload) for row in rows]
        assert seen == [
            (seller, {"market": "TON-USDT", "side": "sell", "qty": "1.50", "price": "5.2000"}),
            (buyer, {"market": "TON-USDT", "side": "buy", "qty": "1.50", "price": "5.2000"}),
            (buyer, {"market": "TON-USDT", "side": "buy", "qty": "1.00", "price": "5.2100"}),
        ]
        text = render("order_filled", rows[1].payload, translator("en"))
        assert text == "✅ Bought 1.50 TON at 5.2000"


async def test_a_deposed_leader_writes_nothing_once_its_successor_started() -> None:
    """Two processes running the books at once (a stalled leader that lost its lease): the
    one that started last holds the term, and the other's batches write nothing.  PostgreSQL
    only: the embedded SQLite default is a single process."""
    minted: Minted = defaultdict(Counter)
    async with fresh_database("postgres") as db, running(db) as old:
        (user,) = await make_users(db, 1)
        await top_up(old.trading, user, minted)
        async with running(db) as new:
            assert new.trading.term == old.trading.term + 1
            with pytest.raises(WriterUnavailable) as refused:
                await old.submit("TON-USDT", place(user, "buy", 20_000, 100))
            assert refused.value.code == "retry"
            placed = await new.submit("TON-USDT", place(user, "buy", 20_000, 100))
            assert placed.created and placed.order.id == 1
            await assert_consistent(new, minted)


async def test_a_market_buy_with_funds_to_spare_fills_in_full(db: Database) -> None:
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        buyer, seller = await make_users(db, 2)
        for user in (buyer, seller):
            await top_up(desks.trading, user, minted)
        await desks.submit("TON-USDT", place(seller, "sell", 50_000, 100))
        bought = await desks.submit(
            "TON-USDT", PlaceOrder(buyer, Side.BUY, OrderType.MARKET, 0, 100)
        )
        assert (bought.order.filled, bought.order.status) == (100, OrderStatus.FILLED)
        await assert_consistent(desks, minted)


async def test_a_market_buy_spends_only_what_the_buyer_has(db: Database) -> None:
    """3 USDT buys 2.99 TON at 1.0000 (with the 0.2% fee); the rest comes back."""
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        buyer, seller = await make_users(db, 2)
        await top_up(desks.trading, seller, minted)
        await grant(desks, buyer, "USDT", "3", minted)
        await desks.submit("TON-USDT", place(seller, "sell", 10_000, 1_000))
        bought = await desks.submit(
            "TON-USDT", PlaceOrder(buyer, Side.BUY, OrderType.MARKET, 0, 1_000)
        )
        assert (bought.order.filled, bought.order.status) == (299, OrderStatus.EXPIRED)
        assert bought.order.cost == 2_990_000 and bought.order.fee == 5_980
        assert await balance_of(db, buyer, "USDT") == 3_000_000 - 2_995_980
        assert await balance_of(db, buyer, "TON") == 299 * 10**7
        await assert_consistent(desks, minted)


async def test_self_trade_modes_keep_the_books(db: Database) -> None:
    """Each self-trade prevention mode against one's own resting order, market and limit."""
    minted: Minted = defaultdict(Counter)
    async with running(db) as desks:
        me, other = await make_users(db, 2)
        for user in (me, other):
            await top_up(desks.trading, user, minted)
        for stp in SelfTrade:
            for kind in (OrderType.MARKET, OrderType.LIMIT):
                own = await desks.submit("TON-USDT", place(me, "sell", 20_000, 100))
                theirs = await desks.submit("TON-USDT", place(other, "sell", 20_001, 100))
                price = 0 if kind is OrderType.MARKET else 20_001
                taker = await desks.submit(
                    "TON-USDT",
                    PlaceOrder(me, Side.BUY, kind, price, 150, stp=stp, tif=TimeInForce.IOC),
                )
                assert not taker.order.open, (stp, kind, taker.order)
                await assert_consistent(desks, minted)
                for order in (own, theirs):
                    if order.order.id in desks.trading.writers["TON-USDT"].desk.orders:
                        await desks.submit(
                            "TON-USDT", CancelOrder(order.order.user_id, order.order.id)
                        )
        await assert_consistent(desks, minted)


async def test_a_faucet_credit_racing_a_batch_does_not_inflate_the_funds_mirror(
    db: Database,
) -> None:
    """A faucet credit and an order of the same user racing, with the ledger's listeners slow
    (they publish to Redis): an order that reads the balance after the faucet's commit, and is
    still being written when the faucet tells the funds mirror, must not count the faucet's
    money twice.  (It did when the faucet wrote the ledger itself, then called the mirror's
    ``external_credit``: the mirror showed 10,000 USDT more than the ledger.)"""
    minted: Minted = defaultdict(Counter)
    gate_faucet, gate_order = asyncio.Event(), asyncio.Event()
    faucet_waits, order_waits = asyncio.Event(), asyncio.Event()
    watched: list[int] = []

    async def slow_listener(balances: list[Balance]) -> None:
        if not watched or user_account(watched[0], "USDT") not in {b.key for b in balances}:
            return
        if not faucet_waits.is_set():
            faucet_waits.set()
            await gate_faucet.wait()
        elif not order_waits.is_set():
            order_waits.set()
            await gate_order.wait()

    ledger = Ledger()
    ledger.listen(slow_listener)
    async with running(db, ledger=ledger) as desks:
        user, seller = await make_users(db, 2)
        await top_up(desks.trading, seller, minted)
        await desks.submit("TON-USDT", place(seller, "sell", 30_000, 100))
        # The user's USDT is known to the mirror at 0 (a refused order loaded it).
        with pytest.raises(DomainError) as refused:
            await desks.submit("TON-USDT", place(user, "buy", 10_000, 1_000))
        assert refused.value.code == "insufficient_funds"
        watched.append(user)

        faucet = asyncio.create_task(top_up(desks.trading, user, minted))
        await faucet_waits.wait()  # committed; its listeners are running
        order = asyncio.create_task(desks.submit("TON-USDT", place(user, "buy", 10_000, 1_000)))
        # Committed, the pair still in flight (unless the order waits for the faucet).
        with suppress(TimeoutError):
            await asyncio.wait_for(order_waits.wait(), 1)
        gate_faucet.set()
        await faucet
        gate_order.set()
        assert (await order).created
        watched.clear()
        ledger_available = await balance_of(db, user, "USDT")
        assert desks.trading.funds.available((user, "USDT")) == ledger_available
        # Were the mirror ahead, this would pass the risk check and fail the whole batch.
        with pytest.raises(DomainError) as too_much:
            await desks.submit("TON-USDT", place(user, "buy", 10_000, 1_000_000))
        assert too_much.value.code == "insufficient_funds"
        await assert_consistent(desks, minted)


# --- random streams -------------------------------------------------------------------------

MARKETS = {
    # symbol: (the price the stream trades around, in ticks; its unit of quantity, in lots:
    # about 1 USDT's worth, the minimum order)
    "TON-USDT": (20_000, 50),
    "ETH-USDT": (200_000, 5),
}


@dataclass(frozen=True)
class PlaceOp:
    user: int
    market: str
    side: str
    kind: str
    tif: str
    post_only: bool
    stp: str
    offset: int
    qty: int
    coid: str | None


@dataclass(frozen=True)
class CancelOp:
    user: int
    ref: int


@dataclass(frozen=True)
class AmendOp:
    user: int
    ref: int
    offset: int | None
    qty: int | None


@dataclass(frozen=True)
class TopUpOp:
    user: int


Op = PlaceOp | CancelOp | AmendOp | TopUpOp
USERS = 3

places = st.builds(
    PlaceOp,
    user=st.integers(0, USERS - 1),
    market=st.sampled_from(list(MARKETS)),
    side=st.sampled_from(["buy", "sell"]),
    kind=st.sampled_from(["limit", "limit", "limit", "market"]),
    tif=st.sampled_from(["GTC", "GTC", "IOC", "FOK"]),
    post_only=st.sampled_from([False, False, False, True]),
    stp=st.sampled_from([s.value for s in SelfTrade]),
    offset=st.integers(-6, 6),
    # Mostly a few lot sizes; now and then more than anyone can pay for.
    qty=st.integers(1, 44).map(lambda n: n if n <= 40 else 10_000),
    coid=st.none() | st.sampled_from(["a", "b"]),
)
ops: st.SearchStrategy[Op] = st.one_of(
    places,
    places,
    places,
    st.builds(CancelOp, user=st.integers(0, USERS - 1), ref=st.integers(0, 50)),
    st.builds(
        AmendOp,
        user=st.integers(0, USERS - 1),
        ref=st.integers(0, 50),
        offset=st.none() | st.integers(-6, 6),
        qty=st.none() | st.integers(1, 40),
    ),
    st.builds(TopUpOp, user=st.integers(0, USERS - 1)),
)
# Rounds of commands sent at once: several land in one batch (group commit).
streams = st.lists(st.lists(ops, min_size=1, max_size=5), min_size=6, max_size=16)

ALLOWED_REFUSALS = {
    "insufficient_funds",
    "invalid_price",
    "invalid_quantity",
    "invalid_order",
    "below_min_notional",
    "post_only_would_take",
    "fok_not_fillable",
    "no_liquidity",
    "order_not_found",
    "order_closed",
}


@dataclass
class Sent:
    """What a stream placed so far: later cancels and amends pick from it."""

    placed: list[tuple[str, int]] = field(default_factory=list)
    by_coid: dict[tuple[int, str, str], int] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)


async def run_stream(
    desks: Desks,
    users: Sequence[int],
    stream: list[list[Op]],
    minted: Minted,
    sent: Sent | None = None,
) -> Counter[str]:
    """Send the stream; every answer must be an order or a refusal with a known code."""
    sent = sent or Sent()
    placed, by_coid, answers = sent.placed, sent.by_coid, sent.answers

    def step(op: Op) -> Callable[[], Coroutine[Any, Any, Any]] | None:
        if isinstance(op, TopUpOp):
            return lambda: top_up(desks.trading, users[op.user], minted)
        if isinstance(op, PlaceOp):
            middle, small = MARKETS[op.market]
            market = op.kind == "market"
            request: Request = PlaceOrder(
                users[op.user],
                Side(op.side),
                OrderType(op.kind),
                0 if market else middle + op.offset,
                op.qty * small,
                tif=TimeInForce(op.tif),
                post_only=op.post_only and not market and op.tif == "GTC",
                client_order_id=op.coid,
                stp=SelfTrade(op.stp),
            )
            return lambda: desks.submit(op.market, request)
        if not placed:
            return None
        symbol, order_id = placed[op.ref % len(placed)]
        middle, small = MARKETS[symbol]
        if isinstance(op, CancelOp):
            request = CancelOrder(users[op.user], order_id)
        else:
            request = AmendOrder(
                users[op.user],
                order_id,
                None if op.offset is None else middle + op.offset,
                None if op.qty is None else op.qty * small,
            )
        return lambda: desks.submit(symbol, request)

    for round_ in stream:
        calls = [(op, call) for op in round_ if (call := step(op)) is not None]
        results = await asyncio.gather(*(call() for _, call in calls), return_exceptions=True)
        for (op, _), result in zip(calls, results, strict=True):
            if isinstance(op, TopUpOp):
                assert result is None, result
                continue
            if isinstance(result, WriterUnavailable):
                raise AssertionError(f"a batch failed without a cause: {op}") from result
            if isinstance(result, DomainError):
                assert result.code in ALLOWED_REFUSALS, (op, result.code, result.message)
                answers[result.code] += 1
                continue
            if isinstance(result, BaseException):
                raise result
            assert isinstance(result, Outcome)
            answers["ok"] += 1
            if isinstance(op, PlaceOp):
                order = result.order
                if op.coid is not None:
                    key = (order.user_id, op.market, op.coid)
                    # A new order for a new id; the first order again for a used one.
                    assert result.created == (key not in by_coid), (op, result)
                    assert by_coid.setdefault(key, order.id) == order.id, (op, result)
                if result.created:
                    placed.append((op.market, order.id))
    return answers


@pytest.mark.parametrize("kind", BACKENDS)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stream=streams)
async def test_random_streams_keep_every_book_consistent(kind: str, stream: list[list[Op]]) -> None:
    minted: Minted = defaultdict(Counter)
    async with fresh_database(kind) as db:
        async with running(db) as desks:
            users = await make_users(db, USERS)
            for user in users:
                await top_up(desks.trading, user, minted)
            answers = await run_stream(desks, users, stream, minted)
            await assert_consistent(desks, minted)
            trades = len(await all_trades(db))
            event(f"trades: {'none' if not trades else 'some' if trades < 5 else 'many'}")
            for code in answers:
                event(f"answered {code}")
            before = book_state(desks)
        # Restarted from the database alone: the same books and holds; ids go on.
        async with running(db) as again:
            assert book_state(again) == before
            last = max((o.id for o in await all_orders(db)), default=0)
            assert again.trading._next_id() > last
            await assert_consistent(again, minted)


def busy_stream(seed: int, rounds: int) -> list[list[Op]]:
    """A long stream around a tight spread: most limit orders cross something."""
    rng = random.Random(seed)
    stream: list[list[Op]] = []
    for _ in range(rounds):
        round_: list[Op] = []
        for _ in range(rng.randint(1, 6)):
            roll = rng.random()
            user = rng.randrange(USERS)
            if roll < 0.7:
                market = rng.choice(list(MARKETS))
                kind = "market" if rng.random() < 0.15 else "limit"
                round_.append(
                    PlaceOp(
                        user,
                        market,
                        rng.choice(["buy", "sell"]),
                        kind,
                        rng.choice(["GTC", "GTC", "GTC", "IOC", "FOK"]),
                        rng.random() < 0.1,
                        rng.choice([s.value for s in SelfTrade]),
                        rng.randint(-3, 3),
                        rng.randint(1, 40) if rng.random() < 0.97 else 10_000,
                        rng.choice([None, None, None, "a", "b", "c"]),
                    )
                )
            elif roll < 0.85:
                round_.append(CancelOp(user, rng.randrange(200)))
            elif roll < 0.97:
                offset = rng.choice([None, rng.randint(-3, 3)])
                qty = rng.choice([None, rng.randint(1, 40)])
                round_.append(AmendOp(user, rng.randrange(200), offset, qty))
            else:
                round_.append(TopUpOp(user))
        stream.append(round_)
    return stream


@pytest.mark.parametrize("kind", BACKENDS)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32))
async def test_long_busy_streams_keep_every_book_consistent(kind: str, seed: int) -> None:
    minted: Minted = defaultdict(Counter)
    async with fresh_database(kind) as db:
        async with running(db) as desks:
            users = await make_users(db, USERS)
            for user in users:
                await top_up(desks.trading, user, minted)
            stream = busy_stream(seed, 60)
            sent = Sent()
            await run_stream(desks, users, stream[:30], minted, sent)
            await assert_consistent(desks, minted)
            answers = await run_stream(desks, users, stream[30:], minted, sent)
            await assert_consistent(desks, minted)
            trades = len(await all_trades(db))
            assert answers["ok"] > 50 and trades > 10, (answers, trades)
            event(f"busy: {trades // 10 * 10}+ trades")
            for code in answers:
                event(f"busy: answered {code}")
            before = book_state(desks)
        async with running(db) as again:
            assert book_state(again) == before
            await assert_consistent(again, minted)
