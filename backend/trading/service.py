"""The order books this process runs: place, cancel and amend orders; demo funds.

One process runs the books (the one elected for the market feed when Redis is used); it owns a
writer per market and the funds mirror they share.  Requests reach the writer of their market
and wait for its group commit.  Which process a request runs in is ``router.py``'s choice.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import func
from sqlmodel import select

from backend.config import TradingSettings
from backend.db.engine import Database
from backend.errors import Conflict, Forbidden, NotFound
from backend.hub.hub import Hub
from backend.ledger.assets import ASSETS
from backend.ledger.service import Ledger, derived_id
from backend.trading.commands import (
    CancelOrder,
    Deposit,
    OrderRequest,
    Withdraw,
    WriterUnavailable,
)
from backend.trading.funds import Funds
from backend.trading.markets import TradingMarket, trading_markets
from backend.trading.models import Order, TradeRecord
from backend.trading.publish import Announcer
from backend.trading.term import begin_term
from backend.trading.writer import MarketWriter, Outcome

log = structlog.get_logger(__name__)

FAUCET = "faucet"
# What the faucet tops a demo balance up to: enough to trade every market a few times over.
FAUCET_LEVELS = {
    "USDT": Decimal("10000"),
    "TON": Decimal("1000"),
    "ETH": Decimal("3"),
    "BNB": Decimal("15"),
}
# A faucet call waits this long for its deposits before answering "retry".
FAUCET_TIMEOUT_SECONDS = 10.0

Spawn = Callable[[Coroutine[Any, Any, None], str], object]
"""Runs a background job under a name; the caller owns the task and cancels it."""


class UnknownMarket(NotFound):
    code = "unknown_market"


class MarketClosed(Conflict):
    code = "market_closed"


class FaucetOff(Forbidden):
    code = "faucet_off"


@dataclass(frozen=True, slots=True)
class Topped:
    asset: str
    amount: int
    """Ledger units added (0: the balance was already at the faucet's level)."""


class Trading:
    """The books of every market, run by this process between ``start`` and ``stop``."""

    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        hub: Hub,
        settings: TradingSettings,
        *,
        demo: bool = True,
    ) -> None:
        """``demo``: demo funds may be minted (the faucet, the market maker): never in
        production."""
        self.db = db
        self.demo = demo
        self.ledger = ledger
        self.settings = settings
        self.markets: dict[str, TradingMarket] = trading_markets(
            settings.maker_fee_bps, settings.taker_fee_bps
        )
        self._funds = Funds()
        self.announcer = Announcer(hub, settings.book_depth)
        self._maker_user_ids: set[int] = set()
        self._ids: Iterator[int] = itertools.count(1)
        self._trade_ids: Iterator[int] = itertools.count(1)
        self._faucet_locks: dict[int, asyncio.Lock] = {}
        self.writers = {
            symbol: MarketWriter(
                db,
                market,
                self._funds,
                self._next_id,
                self._next_trade_id,
                self.announcer,
                ledger,
                lambda: self._term,
                batch_max=settings.batch_max,
                snapshot_every=settings.snapshot_every,
                maker_user_ids=self._maker_user_ids,
            )
            for symbol, market in self.markets.items()
        }
        self._running = False
        self._term = 0
        self._reference: dict[str, int] = {}
        """The feed's latest price of each market, in ticks."""

    @property
    def running(self) -> bool:
        """Whether this process runs the books now (between ``start`` and ``stop``)."""
        return self._running

    @property
    def term(self) -> int:
        """This process's term running the books (``term.py``)."""
        return self._term

    @property
    def maker_user_ids(self) -> Collection[int]:
        """The built-in market maker's users: no fill messages, no volume points.  Live: the
        maker adds itself once it runs."""
        return self._maker_user_ids

    def add_market_maker(self, user_id: int) -> None:
        self._maker_user_ids.add(user_id)

    def market(self, symbol: str) -> TradingMarket:
        try:
            return self.markets[symbol]
        except KeyError:
            raise UnknownMarket(
                f"no market {symbol!r}; markets: {', '.join(self.markets)}"
            ) from None

    def held(self, user_id: int, asset: str) -> int:
        """What the user's open orders hold in escrow (locked in their balance)."""
        return sum(writer.desk.held[(user_id, asset)] for writer in self.writers.values())

    def available(self, user_id: int, asset: str) -> int | None:
        """What the funds mirror has the user's balance at; None when it has not read it."""
        pair = (user_id, asset)
        return self._funds.available(pair) if self._funds.known(pair) else None

    def reference_price(self, symbol: str) -> int | None:
        """The feed's latest price of the market, in ticks (None before its first tick)."""
        return self._reference.get(symbol)

    async def on_reference_prices(self, prices: Mapping[str, int]) -> None:
        """The feed's tick: candles of quiet minutes follow it; the market maker quotes it."""
        for symbol, ticks in prices.items():
            market = self.markets.get(symbol)
            if market is not None:
                self._reference[symbol] = ticks
                await self.announcer.reference(market, ticks)

    def _next_id(self) -> int:
        return next(self._ids)

    def _next_trade_id(self) -> int:
        """Trade ids increase over all markets, so "newest first" is by id."""
        return next(self._trade_ids)

    async def start(self, spawn: Spawn) -> None:
        """Rebuild every book, then let the writers run (``spawn`` owns their tasks)."""
        # Other processes may have run the books since this one last did: its mirror is stale,
        # and requests queued in its last term were answered "retry" by now.
        self._funds.forget()
        for writer in self.writers.values():
            writer.drop_queued()
        # Waits for a predecessor's batches in flight; after it, theirs write nothing.
        self._term = await begin_term(self.db)
        for writer in self.writers.values():
            await writer.recover()
        async with self.db.reads() as session:
            stored = (await session.exec(select(func.max(Order.id)))).one() or 0
            traded = (await session.exec(select(func.max(TradeRecord.id)))).one() or 0
        seen = max(writer.desk.book.last_order_id for writer in self.writers.values())
        self._ids = itertools.count(max(stored, seen) + 1)
        self._trade_ids = itertools.count(traded + 1)
        for symbol, writer in self.writers.items():
            await self.announcer.book(writer.desk)
            spawn(writer.run(), f"trading-{symbol}")
        self._running = True

    def stop(self) -> None:
        """This process no longer runs the books (its writers' tasks are cancelled)."""
        self._running = False

    async def submit(self, symbol: str, request: OrderRequest) -> Outcome:
        """On this process's books: the request's outcome once its batch committed."""
        writer = self.writers[self.market(symbol).symbol]
        if symbol in self.settings.halted and not isinstance(request, CancelOrder):
            raise MarketClosed(f"{symbol} is closed to new orders; cancels still work")
        if not self.running:
            raise WriterUnavailable("trading is starting: try again in a moment")
        try:
            outcome = await asyncio.wait_for(
                writer.submit(request), self.settings.order_timeout_seconds
            )
        except TimeoutError:
            # Cancelled with the wait: skipped if its batch had not started, else it may still
            # be placed, and a retry with the same client order id finds it.
            raise WriterUnavailable(
                "the order book is busy; retry with the same client_order_id"
            ) from None
        assert outcome is not None  # only a deposit answers None
        return outcome

    async def withdraw(self, request: Withdraw) -> None:
        """Debit ``request`` on this process's books (its amount must be available: raises
        InsufficientFunds otherwise).  Idempotent by transfer id only as far as the ledger is:
        callers check ``Ledger.stored`` before a retry."""
        if not self.running:
            raise WriterUnavailable("trading is starting: try again in a moment")
        writer = next(iter(self.writers.values()))
        try:
            await asyncio.wait_for(writer.submit(request), self.settings.order_timeout_seconds)
        except TimeoutError:
            raise WriterUnavailable("the order books are busy: try again") from None

    async def top_up(
        self,
        user_id: int,
        assets: Collection[str] | None = None,
        to: Mapping[str, Decimal] = FAUCET_LEVELS,
    ) -> list[Topped]:
        """Demo funds: each asset up to its level in ``to``, out of ``sys:faucet``.  Run by
        the process that runs the books: its funds mirror must see the credit."""
        if not self.demo:
            raise FaucetOff("demo funds are never minted in production")
        levels = {code: ASSETS[code].to_units(level) for code, level in to.items()}
        wanted = [code for code in levels if assets is None or code in assets]
        # One top-up per user at a time: two at once would both see the balance low.
        lock = self._faucet_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            async with self.db.reads() as session:
                probe = Funds()
                await probe.load(session, [(user_id, code) for code in wanted])
            moves = []
            for code in wanted:
                # What open orders hold counts too: placing orders does not refill the faucet.
                has = probe.available((user_id, code)) + self.held(user_id, code)
                if has < levels[code]:
                    moves.append((code, levels[code] - has))
            if moves:
                await self._deposit(user_id, moves)
        added = dict(moves)
        return [Topped(code, added.get(code, 0)) for code in wanted]

    async def _deposit(self, user_id: int, moves: list[tuple[str, int]]) -> None:
        """Through a writer's batch, like a trade's proceeds: the funds mirror and the ledger
        take the credit together, however it races with orders in flight."""
        if not self.running:
            raise WriterUnavailable("trading is starting: try again in a moment")
        writer = next(iter(self.writers.values()))
        stamp = uuid.uuid4().hex
        deposits = [
            writer.submit(
                Deposit(user_id, code, amount, FAUCET, derived_id(FAUCET, f"{stamp}:{code}"))
            )
            for code, amount in moves
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*deposits), FAUCET_TIMEOUT_SECONDS)
        except TimeoutError:
            raise WriterUnavailable("the order books are busy: try again") from None
