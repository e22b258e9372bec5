"""Shared by the trading tests: desks on a bare database, order streams, and the checks
that every book, balance and table agree."""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from sqlmodel import select

from backend.auth.signin import sign_in
from backend.config import TradingSettings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import DomainError
from backend.hub.backends.memory import MemoryBackend
from backend.hub.hub import Hub
from backend.ledger.domain import system_account, user_account
from backend.ledger.service import Ledger
from backend.ledger.verify import verify
from backend.trading.commands import (
    AmendOrder,
    CancelOrder,
    OrderClosed,
    PlaceOrder,
    Request,
    WriterUnavailable,
)
from backend.trading.desk import Desk
from backend.trading.engine import OrderType, SelfTrade, Side, TimeInForce
from backend.trading.models import Order, OrderStatus, TradeRecord
from backend.trading.orders import limit_hold
from backend.trading.service import Trading
from backend.trading.writer import Outcome
from backend.users.service import TelegramProfile
from tests.helpers import counters as accounts
from tests.helpers import open_database

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
            mirror = trading.available(user, asset)
            if mirror is not None:
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


def place(user: int, side: str, price: int, qty: int, **extra: Any) -> PlaceOrder:
    return PlaceOrder(user, Side(side), OrderType.LIMIT, price, qty, **extra)


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
