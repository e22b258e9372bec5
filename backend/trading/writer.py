"""A market's single writer: takes requests from a queue, runs a batch of them through the desk,
stores the batch in one transaction (group commit), then answers and announces.

An accepted order is durable before its sender hears of it: the answer waits for the commit.
If the commit fails, nothing of the batch happened: its senders get a "retry" error, and the
writer rebuilds its book and the funds mirror from the database before taking more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

import structlog
from sqlmodel import col, select

from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import DomainError
from backend.ledger.service import Ledger
from backend.trading.commands import PlaceOrder, Request, WriterUnavailable, decode
from backend.trading.desk import Batch, Desk
from backend.trading.engine import Book
from backend.trading.funds import Funds
from backend.trading.markets import TradingMarket
from backend.trading.models import BookSnapshot, JournalEntry, Order, OrderStatus
from backend.trading.orders import OrderState
from backend.trading.persist import persist
from backend.trading.publish import Announcer, Messages
from backend.trading.term import check_term

log = structlog.get_logger(__name__)

# Requests waiting for one market's writer; past this, new ones are answered "retry" at once.
QUEUE_MAX = 20_000
# Committed batches waiting to be published; past this the writer waits for the publisher
# (backpressure: a slow hub slows order entry rather than growing memory without bound).
ANNOUNCE_BACKLOG = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    order: OrderState
    created: bool
    """False: a place whose client order id was used before; ``order`` is that order."""


@dataclass(slots=True)
class Pending:
    request: Request
    answer: asyncio.Future[Outcome | None]


class MarketWriter:
    def __init__(
        self,
        db: Database,
        market: TradingMarket,
        funds: Funds,
        next_id: Callable[[], int],
        next_trade_id: Callable[[], int],
        announcer: Announcer,
        ledger: Ledger,
        term: Callable[[], int],
        *,
        batch_max: int,
        snapshot_every: int,
        maker_user_ids: Collection[int] = (),
    ) -> None:
        """``maker_user_ids``: the built-in market maker's users (they get no fill messages)."""
        self.db = db
        self.ledger = ledger
        self.term = term
        self.maker_user_ids = maker_user_ids
        self.market = market
        self.funds = funds
        self.next_id = next_id
        self.next_trade_id = next_trade_id
        self.announcer = announcer
        self.batch_max = batch_max
        self.snapshot_every = snapshot_every
        self.desk = Desk(market, Book(market.spec), funds, next_trade_id)
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(QUEUE_MAX)
        self._announcements: asyncio.Queue[Messages] = asyncio.Queue(ANNOUNCE_BACKLOG)

    async def submit(self, request: Request) -> Outcome | None:
        """The order after ``request`` was applied and committed (None for a deposit);
        raises DomainError."""
        answer: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(Pending(request, answer))
        except asyncio.QueueFull:
            raise WriterUnavailable("the order book is overloaded: try again shortly") from None
        # Cancelled (the caller timed out) before its batch: the writer skips it.
        return await answer

    def drop_queued(self) -> None:
        """Answer every queued request "retry" (a new term starts with an empty queue)."""
        pending = []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        self._fail(pending)

    async def recover(self) -> None:
        """The book from its newest snapshot plus the journal after it; the open orders and
        their holds from the orders table.  The two must agree."""
        symbol = self.market.symbol
        async with self.db.reads() as session:
            newest = (
                await session.exec(
                    select(BookSnapshot)
                    .where(col(BookSnapshot.market) == symbol)
                    .order_by(col(BookSnapshot.seq).desc())
                    .limit(1)
                )
            ).first()
            book = Book.restore(self.market.spec, newest.data) if newest else Book(self.market.spec)
            journal = await session.exec(
                select(JournalEntry)
                .where(col(JournalEntry.market) == symbol, col(JournalEntry.seq) > book.seq)
                .order_by(col(JournalEntry.seq))
            )
            for entry in journal:
                book.apply(decode(entry.command))
                if book.seq != entry.seq:
                    raise RuntimeError(f"{symbol}: journal gap at {entry.seq}")
            rows = await session.exec(
                select(Order).where(
                    col(Order.market) == symbol, col(Order.status) == OrderStatus.OPEN.value
                )
            )
            orders = {row.id: OrderState.from_row(row) for row in rows}
        resting = {info.order_id for info in book.orders()}
        if resting != set(orders):
            raise RuntimeError(
                f"{symbol}: the book and the orders table disagree: "
                f"{len(resting ^ set(orders))} orders differ"
            )
        self.desk = Desk(self.market, book, self.funds, self.next_trade_id)
        self.desk.adopt(orders)
        log.info("trading_book_recovered", market=symbol, seq=book.seq, open=len(orders))

    async def run(self) -> None:
        """Write batches; announce them from a second task, so that publishing one batch
        overlaps writing the next (announcements keep their order)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._announce_all(), name=f"announce-{self.market.symbol}")
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self.batch_max and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    await self._write(batch)
                except asyncio.CancelledError:
                    self._fail(batch)
                    raise
                except Exception:
                    log.exception(
                        "trading_batch_failed", market=self.market.symbol, size=len(batch)
                    )
                    # Answered once rebuilt, so what they then read (holds, the book) is true.
                    await self._rebuild()
                    self._fail(batch)

    async def _announce_all(self) -> None:
        while True:
            messages = await self._announcements.get()
            try:
                await self.announcer.send(messages)
            except Exception:
                log.exception("trading_announce_failed", market=self.market.symbol)

    async def _write(self, pending: list[Pending]) -> None:
        # A request whose sender gave up (timed out, disconnected) before its turn is not run.
        pending = [item for item in pending if not item.answer.done()]
        if not pending:
            return
        await self._load_funds(pending)
        earlier = await self._placed_before(pending)
        batch = Batch()
        results: list[Outcome | DomainError | None] = []
        for item in pending:
            request = item.request
            key = None
            if isinstance(request, PlaceOrder) and request.client_order_id is not None:
                key = (request.user_id, request.client_order_id)
                if key in earlier:
                    results.append(earlier[key])
                    continue
            order_id = self.next_id() if isinstance(request, PlaceOrder) else 0
            result: Outcome | DomainError | None
            try:
                order = self.desk.apply(request, order_id, batch)
                # A copy: the next batch may change the live order before this answer is read.
                result = None if order is None else Outcome(replace(order), True)
            except DomainError as refused:
                result = refused
            results.append(result)
            if key is not None:
                # A repeat later in this batch gets the same answer.
                earlier[key] = (
                    Outcome(result.order, False) if isinstance(result, Outcome) else result
                )
        if not batch.journal and not batch.transfers:
            self._answer(pending, results)
            return
        self.funds.hold(batch.pairs)
        committed = False
        try:
            seq = self.desk.book.seq
            snapshot = None
            if seq // self.snapshot_every > (seq - len(batch.journal)) // self.snapshot_every:
                snapshot = self.desk.book.snapshot()
            async with unit_of_work(self.db) as uow:
                # First: the term's shared lock makes a successor's start wait for this batch.
                await check_term(uow, self.term())
                await persist(uow, self.ledger, self.market, batch, snapshot, self.maker_user_ids)
            committed = True
        finally:
            self.funds.release(batch.pairs)
            if committed:
                self.funds.settle(batch.credits)
            else:
                self.funds.drop(batch.pairs)
        # Built now, before the next batch changes the book: what goes out is what committed.
        messages = self.announcer.prepare(self.desk, batch)
        self._answer(pending, results)
        # Waits only when announcing has fallen far behind: the writer slows to its pace.
        await self._announcements.put(messages)

    async def _load_funds(self, pending: list[Pending]) -> None:
        """Read the balances this batch's risk checks need and the mirror lacks, and re-read
        those that look too small (a credit from outside may have landed)."""
        wanted = {pair for item in pending if (pair := self.desk.needs(item.request))}
        stale = [pair for pair in wanted if not self.funds.known(pair)]
        stale += [p for p in wanted if self.funds.known(p) and self.funds.available(p) == 0]
        if stale:
            async with self.db.reads() as session:
                await self.funds.load(session, stale)

    async def _placed_before(self, pending: list[Pending]) -> dict[tuple[int, str], Any]:
        """Orders this batch's client order ids already placed (answered, not placed again)."""
        wanted = {
            (item.request.user_id, item.request.client_order_id)
            for item in pending
            if isinstance(item.request, PlaceOrder) and item.request.client_order_id is not None
        }
        if not wanted:
            return {}
        query = select(Order).where(
            col(Order.market) == self.market.symbol,
            col(Order.user_id).in_({user for user, _ in wanted}),
            col(Order.client_order_id).in_({coid for _, coid in wanted}),
        )
        async with self.db.reads() as session:
            rows = (await session.exec(query)).all()
        found: dict[tuple[int, str], Any] = {}
        for row in rows:
            key = (row.user_id, row.client_order_id or "")
            if key in wanted:
                found[key] = Outcome(OrderState.from_row(row), False)
        return found

    def _answer(self, pending: list[Pending], results: list[Outcome | DomainError | None]) -> None:
        for item, result in zip(pending, results, strict=True):
            if item.answer.done():
                continue
            if isinstance(result, DomainError):
                item.answer.set_exception(result)
            else:
                item.answer.set_result(result)

    def _fail(self, pending: list[Pending]) -> None:
        for item in pending:
            if not item.answer.done():
                item.answer.set_exception(
                    WriterUnavailable(
                        "the order book could not confirm this: retry with the same "
                        "client_order_id (a repeat is never placed twice)"
                    )
                )

    async def _rebuild(self) -> None:
        """After a failed commit the book is ahead of the database (the mirror forgot the
        balances the batch touched, in ``_write``)."""
        while True:
            try:
                await self.recover()
                await self.announcer.book(self.desk)
                return
            except Exception:
                log.exception("trading_recover_failed", market=self.market.symbol)
                await asyncio.sleep(1.0)
