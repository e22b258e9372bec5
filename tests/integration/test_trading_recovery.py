"""Trading after a crash and after a failed commit, on SQLite and PostgreSQL.

A crash is the writers' tasks cancelled where they stand, with no graceful shutdown; a fresh
``Trading`` on a fresh connection must then rebuild every book from the newest snapshot plus
the journal after it and the orders table, lose no acknowledged order, and trade on.  A batch
whose commit fails must answer ``retry`` and leave the books and balances as they were.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, text
from sqlmodel import col, select

from backend.config import Settings
from backend.db import migrate
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import DomainError
from backend.http import status_of
from backend.ledger.domain import TransferRequest, system_account, user_account
from backend.trading import writer as writer_module
from backend.trading.commands import CancelOrder, PlaceOrder, WriterUnavailable
from backend.trading.engine import OrderType, Side, TimeInForce
from backend.trading.models import BookSnapshot, JournalEntry, OrderStatus
from tests.helpers import BACKENDS, make_settings, temporary_database
from tests.trading_helpers import (
    USERS,
    Desks,
    Minted,
    Sent,
    accounts,
    all_orders,
    all_trades,
    assert_consistent,
    balance_of,
    book_state,
    busy_stream,
    desk_state,
    make_users,
    place,
    run_stream,
    running,
    settled,
    top_up,
    trading_settings,
)


@pytest.fixture(params=BACKENDS)
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    """A migrated database of its own; each ``connect`` is another process's connection."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            config = make_settings(tmp_path)
        else:
            url = await stack.enter_async_context(temporary_database())
            config = make_settings(tmp_path, database={"url": url})
        await migrate.upgrade_async(config)
        yield config


@pytest.fixture
async def connect(settings: Settings) -> AsyncIterator[Any]:
    opened: list[Database] = []

    def open_one() -> Database:
        opened.append(Database.connect(settings))
        return opened[-1]

    yield open_one
    for db in opened:
        await db.dispose()


async def stored_counts(db: Database, symbol: str) -> tuple[int, int, int]:
    """(snapshots, the newest snapshot's seq, journal entries after it)."""
    async with db.reads() as session:
        snapshots = (
            await session.exec(
                select(func.count(), func.max(BookSnapshot.seq)).where(
                    col(BookSnapshot.market) == symbol
                )
            )
        ).one()
        newest = snapshots[1] or 0
        after = (
            await session.exec(
                select(func.count()).where(
                    col(JournalEntry.market) == symbol, col(JournalEntry.seq) > newest
                )
            )
        ).one()
    return snapshots[0], newest, after


async def test_a_restart_rebuilds_every_book_and_trades_on(connect: Any) -> None:
    minted: Minted = defaultdict(Counter)
    db = connect()
    async with running(db) as desks:
        users = await make_users(db, USERS + 1)
        for user in users:
            await top_up(desks.trading, user, minted)
        await run_stream(desks, users[:USERS], busy_stream(7, 40), minted, Sent())
        # Two asks at one price in a market the stream leaves alone, in time order; a bid.
        first = await desks.submit("BNB-USDT", place(users[0], "sell", 60_000, 300))
        second = await desks.submit("BNB-USDT", place(users[1], "sell", 60_000, 200))
        bid = await desks.submit("ETH-USDT", place(users[2], "buy", 100_000, 100))
        # A snapshot was stored, and there are journal entries after it to replay.
        writer = desks.trading.writers["TON-USDT"]
        while (await stored_counts(db, "TON-USDT"))[2] == 0:
            with pytest.raises(DomainError):  # refused by the book: journaled all the same
                await desks.submit("TON-USDT", place(users[0], "sell", 40_000, 1))
        snapshots, newest, after = await stored_counts(db, "TON-USDT")
        assert snapshots >= 2 and 0 < newest < writer.desk.book.seq and after > 0
        await assert_consistent(desks, minted)
        before = book_state(desks)
        last_id = max(o.id for o in await all_orders(db))
        trades_before = len(await all_trades(db))

    # A new process: its own connection, its own Trading, nothing but the database.
    db = connect()
    async with running(db) as again:
        assert book_state(again) == before
        await assert_consistent(again, minted)
        # Order ids go on after every id ever stored.
        fresh = await again.submit("BNB-USDT", place(users[3], "buy", 50_000, 100))
        assert fresh.order.id > last_id
        # The recovered asks keep their time priority: a buy of 0.3 BNB at their price takes
        # the first one, all of it, and leaves the second.
        taker = await again.submit("BNB-USDT", place(users[3], "buy", 60_000, 300))
        assert taker.order.status is OrderStatus.FILLED
        trades = (await all_trades(db))[trades_before:]
        assert [(t.maker_order_id, t.qty) for t in trades] == [(first.order.id, 300)]
        book = again.trading.writers["BNB-USDT"].desk.book
        resting = book.order(second.order.id)
        assert resting is not None and resting.open == 200
        assert book.order(first.order.id) is None
        # And the recovered bid is still cancellable, giving back what it held.
        held = again.trading.writers["ETH-USDT"].desk.orders[bid.order.id].reserved
        assert held == bid.order.reserved > 0
        usdt = await balance_of(db, users[2], "USDT")
        await again.submit("ETH-USDT", CancelOrder(users[2], bid.order.id))
        assert await balance_of(db, users[2], "USDT") == usdt + held
        await assert_consistent(again, minted)


# A writer cancelled mid-statement leaves its connection unreturned; collected, it warns.
@pytest.mark.filterwarnings("ignore:The garbage collector is trying to clean up non-checked-in")
async def test_crashes_in_the_middle_of_batches_keep_exactly_what_was_committed(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash at several moments while a stream is being written: each restart finds every
    market as its last committed batch left it (or, if the crash came between the commit and
    its answer, with that batch too), every acknowledged order stored, and a request answered
    "retry" safe to send again with its client order id."""
    minted: Minted = defaultdict(Counter)
    # Requests queued at a crashed writer give up quickly; the restarted ones take their time.
    config = trading_settings(order_timeout_seconds=0.5, batch_max=4)
    rng = random.Random(11)
    users: list[int] = []
    acknowledged: dict[int, tuple[int, str]] = {}
    retried: list[PlaceOrder] = []
    committed: dict[str, dict[str, Any]] = {}
    live: dict[str, Any] = {}
    real_persist = writer_module.persist

    async def recording_persist(uow: Any, ledger: Any, market: Any, *rest: Any) -> None:
        """The book as this batch leaves it, recorded once the batch has committed."""
        await real_persist(uow, ledger, market, *rest)
        state = desk_state(live[market.symbol].desk)

        async def mark() -> None:
            committed[market.symbol] = state

        uow.after_commit(mark)

    monkeypatch.setattr(writer_module, "persist", recording_persist)

    def order(n: int, coid: str) -> PlaceOrder:
        return PlaceOrder(
            users[n % USERS],
            Side(rng.choice(["buy", "sell"])),
            OrderType.LIMIT,
            20_000 + rng.randint(-2, 2),
            rng.randint(50, 500),
            tif=rng.choice([TimeInForce.GTC, TimeInForce.IOC]),
            client_order_id=coid,
        )

    async def send(desks: Desks, request: PlaceOrder) -> None:
        try:
            outcome = await desks.submit("TON-USDT", request)
        except WriterUnavailable:
            retried.append(request)
            return
        except DomainError:
            return
        acknowledged[outcome.order.id] = (request.user_id, request.client_order_id or "")

    for cycle, delay in enumerate((0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4)):
        db = connect()
        async with running(db, config) as desks:
            live.update(desks.trading.writers)
            committed.clear()
            committed.update(book_state(desks))
            if not users:
                users = await make_users(db, USERS)
                for user in users:
                    await top_up(desks.trading, user, minted)
            requests = [order(n, f"c{cycle}-{n}") for n in range(40)]
            senders = [asyncio.create_task(send(desks, request)) for request in requests]
            await asyncio.sleep(delay)
            await desks.crash()
            in_memory = book_state(desks)
            await asyncio.gather(*senders)
            last_committed = dict(committed)
            # The crashed process's connections go with it, SQLite's file lock included (a
            # connection cancelled mid-statement is dropped unclosed: collect it).
            await db.dispose()
            gc.collect()

        db = connect()
        async with running(db, trading_settings(batch_max=4)) as again:
            live.update(again.trading.writers)
            for symbol, state in book_state(again).items():
                assert state in (last_committed[symbol], in_memory[symbol]), (cycle, symbol)
            await assert_consistent(again, minted)
            stored = {o.id: (o.user_id, o.client_order_id) for o in await all_orders(db)}
            for order_id, owner in acknowledged.items():
                assert stored.get(order_id) == owner, (cycle, order_id)
            by_coid = {owner: order_id for order_id, owner in stored.items()}
            # Sent again, a request answered "retry" is placed once: the stored order if its
            # batch did commit, a new one if it did not.
            for request in retried[-5:]:
                try:
                    outcome = await again.submit("TON-USDT", request)
                except WriterUnavailable:
                    pytest.fail("a restarted writer answered retry")
                except DomainError:  # a refusal of its own (funds, fill-or-kill...)
                    continue
                earlier = by_coid.get((request.user_id, request.client_order_id))
                assert outcome.created == (earlier is None)
                if earlier is not None:
                    assert outcome.order.id == earlier
            retried.clear()
            await assert_consistent(again, minted)
    # The crashes did land in the middle of streams (not all of them before or after).
    assert len(acknowledged) > 20


async def sabotage_trades(db: Database, on: bool) -> None:
    """A trigger that refuses every trade row: the batch's commit fails, nothing else does."""
    async with db.engine.begin() as connection:
        if db.dialect == "sqlite":
            statements = (
                [
                    "CREATE TRIGGER sabotage BEFORE INSERT ON trades BEGIN "
                    "SELECT RAISE(ABORT, 'sabotaged'); END"
                ]
                if on
                else ["DROP TRIGGER sabotage"]
            )
        else:
            statements = (
                [
                    "CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'sabotaged'; END $$",
                    "CREATE TRIGGER sabotage BEFORE INSERT ON trades "
                    "FOR EACH ROW EXECUTE FUNCTION sabotage()",
                ]
                if on
                else ["DROP TRIGGER sabotage ON trades", "DROP FUNCTION sabotage()"]
            )
        for statement in statements:
            await connection.execute(text(statement))


async def test_a_failed_commit_answers_retry_and_changes_nothing(connect: Any) -> None:
    minted: Minted = defaultdict(Counter)
    db = connect()
    async with running(db) as desks:
        seller, buyer, bystander = await make_users(db, 3)
        for user in (seller, buyer, bystander):
            await top_up(desks.trading, user, minted)
        ask = await desks.submit("TON-USDT", place(seller, "sell", 20_000, 500))
        before = book_state(desks)
        ledger_before = await accounts(db)
        orders_before = await all_orders(db)
        desk_before = desks.trading.writers["TON-USDT"].desk

        await sabotage_trades(db, True)
        # A crossing buy and an order that trades nothing, sent together: one batch.
        crossing = place(buyer, "buy", 20_000, 200, client_order_id="x1")
        quiet = place(bystander, "buy", 10_000, 200, client_order_id="q1")
        answers = await asyncio.gather(
            desks.submit("TON-USDT", crossing),
            desks.submit("TON-USDT", quiet),
            return_exceptions=True,
        )
        for answer in answers:
            assert isinstance(answer, WriterUnavailable), answer
            assert (status_of(answer), answer.code) == (503, "retry")
        await settled(desks)
        # The writer rebuilt itself from the database: nothing of the batch happened.
        assert desks.trading.writers["TON-USDT"].desk is not desk_before
        assert book_state(desks) == before
        assert await accounts(db) == ledger_before
        assert [o.model_dump() for o in await all_orders(db)] == [
            o.model_dump() for o in orders_before
        ]
        assert desks.trading.held(buyer, "USDT") == desks.trading.held(bystander, "USDT") == 0
        await assert_consistent(desks, minted)

        await sabotage_trades(db, False)
        done = await desks.submit("TON-USDT", crossing)
        assert done.created and done.order.status is OrderStatus.FILLED
        assert (await desks.submit("TON-USDT", quiet)).created
        book = desks.trading.writers["TON-USDT"].desk.book
        resting = book.order(ask.order.id)
        assert resting is not None and resting.open == 300
        await assert_consistent(desks, minted)


async def test_an_outside_debit_the_mirror_missed_is_refused_by_the_ledger(
    connect: Any,
) -> None:
    """Only the writers may debit a trading asset; one that slips past them makes the ledger
    refuse the batch (retry), and the rebuilt mirror then refuses the order itself."""
    minted: Minted = defaultdict(Counter)
    db = connect()
    async with running(db) as desks:
        (user,) = await make_users(db, 1)
        await top_up(desks.trading, user, minted)
        await desks.submit("TON-USDT", place(user, "buy", 10_000, 100))  # loads the mirror
        left = await balance_of(db, user, "USDT")
        drain = TransferRequest(
            "drain-1",
            "test",
            left,
            user_account(user, "USDT"),
            system_account("faucet", "USDT"),
            "USDT",
        )
        async with unit_of_work(db) as uow:
            await desks.ledger.submit(uow, [drain])
        minted[user]["USDT"] -= left
        before = book_state(desks)

        with pytest.raises(WriterUnavailable):
            await desks.submit("TON-USDT", place(user, "buy", 10_000, 200))
        await settled(desks)
        assert book_state(desks) == before
        with pytest.raises(DomainError) as refused:
            await desks.submit("TON-USDT", place(user, "buy", 10_000, 200))
        assert refused.value.code == "insufficient_funds"
        assert await balance_of(db, user, "USDT") == 0
        await assert_consistent(desks, minted)
