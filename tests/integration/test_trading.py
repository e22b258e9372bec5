"""Trading driven directly: a ``Trading`` on a bare database (SQLite and PostgreSQL) with an
in-memory hub, and the books it keeps checked against each other after random order streams.

What must hold whatever users do: the ledger verifies; escrow holds exactly what the open
orders say they hold; every unit the faucet minted is in a user's balance, escrow or fees;
each user's money moved exactly as their trades say; the orders table, the writer's open
orders and the book agree; and a restart rebuilds the very same book.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from backend.db.engine import Database
from backend.errors import DomainError
from backend.http import status_of
from backend.i18n import translator
from backend.ledger.domain import Balance, system_account, user_account
from backend.ledger.service import Ledger
from backend.notify.messages import render
from backend.notify.models import Notification
from backend.trading import queries
from backend.trading.commands import (
    AmendOrder,
    CancelOrder,
    PlaceOrder,
    WriterUnavailable,
)
from backend.trading.engine import OrderType, SelfTrade, Side, TimeInForce
from backend.trading.maker import LEVELS, MarketMaker
from backend.trading.models import OrderStatus
from backend.trading.service import MarketClosed
from tests.helpers import BACKENDS, open_database
from tests.helpers import counters as accounts
from tests.trading_helpers import (
    USERS,
    Minted,
    Op,
    Sent,
    all_orders,
    all_trades,
    assert_consistent,
    balance_of,
    book_state,
    busy_stream,
    fresh_database,
    grant,
    make_users,
    place,
    posted,
    run_stream,
    running,
    streams,
    top_up,
    trading_settings,
)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with AsyncExitStack() as stack:
        yield await open_database(stack, request.param, tmp_path)


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
        assert closed.value.code == "market_closed" and status_of(closed.value) == 409
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
        desks.trading.add_market_maker(bot)
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


async def test_the_market_maker_funds_itself_and_quotes_around_the_reference(
    db: Database,
) -> None:
    async with running(db) as desks:
        trading = desks.trading
        await trading.on_reference_prices({"TON-USDT": 50_000})
        maker = MarketMaker(db, trading)
        quoting = asyncio.create_task(maker.run())
        book = trading.writers["TON-USDT"].desk.book
        try:
            for _ in range(200):
                if len(book) == 2 * LEVELS:
                    break
                await asyncio.sleep(0.05)
        finally:
            quoting.cancel()
            with suppress(asyncio.CancelledError):
                await quoting
        assert maker.user_id in trading.maker_user_ids
        assert trading.available(maker.user_id, "USDT") is not None
        bids = [o.price for o in book.orders() if o.side is Side.BUY]
        asks = [o.price for o in book.orders() if o.side is Side.SELL]
        assert len(bids) == len(asks) == LEVELS
        assert max(bids) < 50_000 < min(asks)
        # No reference price, no quotes.
        assert len(trading.writers["ETH-USDT"].desk.book) == 0


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
        assert desks.trading.available(user, "USDT") == ledger_available
        # Were the mirror ahead, this would pass the risk check and fail the whole batch.
        with pytest.raises(DomainError) as too_much:
            await desks.submit("TON-USDT", place(user, "buy", 10_000, 1_000_000))
        assert too_much.value.code == "insufficient_funds"
        await assert_consistent(desks, minted)


# --- random streams -------------------------------------------------------------------------


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
