"""The matching engine on random command streams (hypothesis).

After every command: the book is not crossed; each level's total is the sum of its orders; every
order's quantity is accounted for (filled + open + cancelled + expired = submitted, amends
included); the L2 deltas, applied to the depth before, give the depth after; fees follow the
rounding rule; fills follow price-time priority; limits, FOK, post-only and budgets hold.  And
replaying the second half of a stream from a snapshot taken in the middle gives the same events
and the same book.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backend.trading.engine import (
    Accepted,
    Amend,
    Amended,
    Book,
    BookDelta,
    Cancel,
    Cancelled,
    Command,
    Event,
    Expired,
    MarketSpec,
    OrderInfo,
    OrderType,
    Place,
    Rejected,
    RejectReason,
    SelfTrade,
    Side,
    Snapshot,
    TimeInForce,
    Trade,
)

# Small ranges on purpose: few owners and prices make self-trades, shared levels and sweeps
# common.  A rebate and an odd unit make the fee rounding show.
SPEC = MarketSpec(
    "TEST", quote_units_per_tick_lot=3, min_notional=600, maker_fee_bps=-2, taker_fee_bps=25
)
OWNERS = st.integers(1, 3)
PRICES = st.integers(97, 103)
QTYS = st.integers(1, 12)
# Takers come bigger than makers, so that they sweep several orders and levels.
TAKER_QTYS = st.integers(1, 40)

Recipe = tuple[Any, ...]

limit_orders = st.tuples(
    st.just("limit"),
    OWNERS,
    st.sampled_from(Side),
    PRICES,
    QTYS,
    st.just(TimeInForce.GTC),
    st.booleans(),
    st.sampled_from(SelfTrade),
)
takers = st.tuples(
    st.just("limit"),
    OWNERS,
    st.sampled_from(Side),
    PRICES,
    TAKER_QTYS,
    st.sampled_from(TimeInForce),
    st.just(False),
    st.sampled_from(SelfTrade),
)
market_orders = st.tuples(
    st.just("market"),
    OWNERS,
    st.sampled_from(Side),
    TAKER_QTYS,
    st.sampled_from(TimeInForce),
    st.sampled_from(SelfTrade),
    st.one_of(st.just(0), st.integers(1, 8_000)),
)
# A pick of the order to cancel or amend: among the resting ones, or any seen (maybe gone).
picks = st.tuples(st.booleans(), st.integers(0, 10**6))
cancels = st.tuples(st.just("cancel"), picks, st.booleans())
amends = st.tuples(
    st.just("amend"),
    picks,
    st.one_of(st.none(), PRICES),
    st.one_of(st.none(), st.integers(1, 16)),
)
# Resting orders listed thrice: one_of picks its branches evenly, and a book needs filling.
recipes: st.SearchStrategy[Recipe] = st.one_of(
    limit_orders, limit_orders, limit_orders, takers, market_orders, cancels, amends
)
streams = st.lists(recipes, min_size=10, max_size=120)


def materialize(recipe: Recipe, book: Book, known: list[int]) -> Command:
    """A recipe as a command against this book: cancels and amends pick a resting order or
    one seen so far (maybe gone), from its owner (or, for some cancels, not)."""
    kind = recipe[0]
    if kind == "limit":
        _, owner, side, price, qty, tif, post_only, stp = recipe
        post_only = post_only and tif is TimeInForce.GTC
        return Place(owner, side, price, qty, tif=tif, post_only=post_only, stp=stp)
    if kind == "market":
        _, owner, side, qty, tif, stp, budget = recipe
        return Place(
            owner, side, 0, qty, type=OrderType.MARKET, tif=tif, stp=stp, quote_budget=budget
        )
    (resting, pick) = recipe[1]
    pool = [o.order_id for o in book.orders()] if resting else known
    order_id = pool[pick % len(pool)] if pool else 1
    info = book.order(order_id)
    owner = info.owner if info is not None else 1
    if kind == "cancel":
        return Cancel(order_id, owner if recipe[2] or pick % 5 else owner + 1)
    return Amend(order_id, owner, price=recipe[2], qty=recipe[3])


def label(cmd: Command, events: list[Event]) -> None:
    """Tells hypothesis's statistics what happened, to show the streams reach every path."""
    for e in events:
        if isinstance(e, Rejected):
            event(f"rejected {e.reason.value}")
        elif isinstance(e, Cancelled):
            event(f"cancelled {e.reason.value}" + (" (partly)" if e.open else ""))
        elif isinstance(e, Amended):
            event("amend kept priority" if e.priority_kept else "amend lost priority")
        elif isinstance(e, Expired):
            event("expired")
    trades = sum(isinstance(e, Trade) for e in events)
    if trades:
        kind = type(cmd).__name__ if isinstance(cmd, Amend) else "place"
        event(f"{kind} traded" + (" more than once" if trades > 1 else ""))


@dataclass
class Ledger:
    """What the events say happened to each order, kept apart from the book."""

    submitted: dict[int, int] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    removed: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    """Cancelled or expired."""

    def open(self, order_id: int) -> int:
        return self.submitted[order_id] - self.filled[order_id] - self.removed[order_id]


@dataclass
class Before:
    """The book just before a command."""

    snapshot: Snapshot
    depth: dict[tuple[Side, int], int]
    queue: list[OrderInfo]
    """Every resting order, bids then asks, each in priority order."""
    last_trade_id: int

    @property
    def orders(self) -> dict[int, OrderInfo]:
        return {o.order_id: o for o in self.queue}

    def opposite(self, side: Side) -> list[OrderInfo]:
        return [o for o in self.queue if o.side is not side]

    @classmethod
    def of(cls, book: Book) -> Before:
        return cls(book.snapshot(), depth_map(book), book.orders(), book.last_trade_id)


def depth_map(book: Book) -> dict[tuple[Side, int], int]:
    bids, asks = book.depth(10**6)
    return {(Side.BUY, p): q for p, q in bids} | {(Side.SELL, p): q for p, q in asks}


def expected_reason(cmd: Command, before: Before) -> RejectReason | None:
    """Why the book must refuse ``cmd``, worked out from the rules and the state before."""
    if isinstance(cmd, Place):
        market = cmd.type is OrderType.MARKET
        if not market and SPEC.value(cmd.price, cmd.qty) < SPEC.min_notional:
            return RejectReason.BELOW_MIN_NOTIONAL
        queue = before.opposite(cmd.side)
        if cmd.post_only and queue and crosses(cmd.side, cmd.price, queue[0].price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        if market and not queue:
            return RejectReason.NO_LIQUIDITY
        if cmd.tif is TimeInForce.FOK and not fok_fillable(cmd, queue):
            return RejectReason.FOK_NOT_FILLABLE
        return None
    info = before.orders.get(cmd.order_id)
    if info is None:
        return RejectReason.UNKNOWN_ORDER
    if info.owner != cmd.owner:
        return RejectReason.NOT_OWNER
    if isinstance(cmd, Cancel):
        return None
    price = info.price if cmd.price is None else cmd.price
    qty = info.qty if cmd.qty is None else cmd.qty
    filled = info.qty - info.open
    if qty <= filled:
        return RejectReason.INVALID_QUANTITY
    if SPEC.value(price, qty) < SPEC.min_notional:
        return RejectReason.BELOW_MIN_NOTIONAL
    if price == info.price and qty - filled <= info.open:
        return None
    queue = before.opposite(info.side)
    if info.post_only and queue and crosses(info.side, price, queue[0].price):
        return RejectReason.POST_ONLY_WOULD_TAKE
    return None


def crosses(side: Side, price: int, resting: int) -> bool:
    return resting <= price if side is Side.BUY else resting >= price


def fok_fillable(cmd: Place, queue: list[OrderInfo]) -> bool:
    """Walks the other side in priority order, as the taker would, without touching it."""
    need = cmd.qty
    budget = cmd.quote_budget or None
    for resting in queue:
        if cmd.type is OrderType.LIMIT and not crosses(cmd.side, cmd.price, resting.price):
            return False
        if resting.owner == cmd.owner:
            if cmd.stp is SelfTrade.CANCEL_OLDEST:
                continue
            return False
        take = min(resting.open, need)
        if budget is not None:
            budget -= SPEC.value(resting.price, take)
            if budget < 0:
                return False
        need -= take
        if not need:
            return True
    return False


def check_command(
    book: Book, cmd: Command, events: list[Event], ledger: Ledger, before: Before
) -> None:
    """Everything one command's events must satisfy, given the book before it."""
    assert events, cmd
    first = events[0]
    assert (first.reason if isinstance(first, Rejected) else None) is expected_reason(cmd, before)
    if isinstance(first, Rejected):
        assert len(events) == 1
        after = book.snapshot()
        assert after["seq"] == before.snapshot["seq"] + 1
        assert {**after, "seq": 0} == {**before.snapshot, "seq": 0}, "a rejection changed the book"
        return

    # L2: the deltas, applied to the depth before, give the depth after.
    levels = dict(before.depth)
    for delta in events:
        if isinstance(delta, BookDelta):
            assert delta.qty >= 0
            if delta.qty:
                levels[(delta.side, delta.price)] = delta.qty
            else:
                levels.pop((delta.side, delta.price), None)
    assert levels == depth_map(book)

    # The ledger of each order, event by event, in the order they happened.
    assert isinstance(first, Accepted | Cancelled | Amended)
    taker_id = first.order_id
    trades: list[Trade] = []
    for e in events:
        if isinstance(e, Accepted):
            ledger.submitted[e.order_id] = e.qty
        elif isinstance(e, Trade):
            assert e.trade_id == before.last_trade_id + 1 + len(trades)
            assert e.taker_order_id == taker_id and e.qty > 0
            assert e.maker_owner != e.taker_owner, "a self-trade went through"
            assert e.value == SPEC.value(e.price, e.qty)
            exact_maker = Fraction(e.value * SPEC.maker_fee_bps, 10_000)
            exact_taker = Fraction(e.value * SPEC.taker_fee_bps, 10_000)
            assert e.maker_fee == ceil(exact_maker) and e.taker_fee == ceil(exact_taker)
            assert e.maker_fee + e.taker_fee >= 0
            ledger.filled[e.maker_order_id] += e.qty
            ledger.filled[e.taker_order_id] += e.qty
            trades.append(e)
        elif isinstance(e, Amended):
            # An amend sets the open quantity: the difference is added to (or taken from) it.
            assert e.qty - e.open == ledger.filled[e.order_id]
            ledger.submitted[e.order_id] += e.open - ledger.open(e.order_id)
        elif isinstance(e, Cancelled | Expired):
            assert e.qty > 0
            ledger.removed[e.order_id] += e.qty
    assert book.last_trade_id == before.last_trade_id + len(trades)

    # Price-time priority: the resting orders touched (filled or self-trade cancelled) are the
    # head of the other side's queue as it stood, in order; no trade is beyond the limit.
    touched: list[int] = []
    for e in events:
        maker = e.maker_order_id if isinstance(e, Trade) else None
        if isinstance(e, Cancelled) and e.order_id != taker_id:
            maker = e.order_id
        if maker is not None and (not touched or touched[-1] != maker):
            touched.append(maker)
    if isinstance(cmd, Place):
        side, limit = cmd.side, cmd.price
    elif isinstance(cmd, Amend):
        side = before.orders[cmd.order_id].side
        limit = before.orders[cmd.order_id].price if cmd.price is None else cmd.price
    else:
        assert not touched
        return
    assert touched == [o.order_id for o in before.opposite(side)][: len(touched)]
    if limit:
        assert all(crosses(side, limit, t.price) for t in trades)

    if isinstance(cmd, Amend):
        check_amend_priority(book, cmd, first, before)
    if isinstance(cmd, Place):
        assert isinstance(first, Accepted) and first.order_id == book.last_order_id
        filled = sum(t.qty for t in trades)
        if cmd.tif is TimeInForce.FOK:
            assert filled == cmd.qty, "a fill-or-kill order part filled"
        if cmd.post_only:
            assert not trades
        if cmd.quote_budget:
            assert sum(t.value for t in trades) <= cmd.quote_budget
        if cmd.type is OrderType.MARKET or cmd.tif is not TimeInForce.GTC:
            assert first.order_id not in book, "only GTC limit orders rest"


def level_queue(queue: list[OrderInfo], side: Side, price: int) -> list[int]:
    return [o.order_id for o in queue if o.side is side and o.price == price]


def check_amend_priority(book: Book, cmd: Amend, amended: Event, before: Before) -> None:
    """Shrinking in place keeps the order's place in its queue; anything else sends it to the
    back of its level (if it still rests once it has traded)."""
    assert isinstance(amended, Amended)
    old = before.orders[cmd.order_id]
    kept = amended.price == old.price and amended.open <= old.open
    assert amended.priority_kept is kept
    if cmd.order_id not in book:
        assert not kept
        return
    now = level_queue(book.orders(), old.side, amended.price)
    if kept:
        assert now == level_queue(before.queue, old.side, old.price)
    else:
        assert now[-1] == cmd.order_id


def check_book(book: Book, ledger: Ledger) -> None:
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, "crossed book"
    orders = book.orders()
    totals: dict[tuple[Side, int], int] = defaultdict(int)
    for info in orders:
        assert info.open > 0 and info.qty - info.open == ledger.filled[info.order_id]
        totals[(info.side, info.price)] += info.open
    assert dict(totals) == depth_map(book)
    assert len(orders) == len(book)
    resting = {info.order_id: info.open for info in orders}
    for order_id in ledger.submitted:
        # Conservation: what was asked for is filled, open, cancelled or expired.
        assert ledger.open(order_id) == resting.get(order_id, 0), order_id


def check_stream(stream: Iterable[Recipe]) -> tuple[Book, list[Command]]:
    """Runs the stream, checking every command and the book after it."""
    book = Book(SPEC)
    ledger = Ledger()
    known: list[int] = []
    commands: list[Command] = []
    for recipe in stream:
        cmd = materialize(recipe, book, known)
        commands.append(cmd)
        before = Before.of(book)
        events = book.apply(cmd)
        label(cmd, events)
        check_command(book, cmd, events, ledger, before)
        check_book(book, ledger)
        if isinstance(events[0], Accepted):
            known.append(events[0].order_id)
    assert book.seq == len(commands)
    return book, commands


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_random_streams_keep_the_book_sound(stream: list[Recipe]) -> None:
    check_stream(stream)


def long_stream(rng: random.Random, length: int) -> Iterator[Recipe]:
    """A busier market than hypothesis's small examples reach: a deep book, sweeps, amends."""
    for _ in range(length):
        roll = rng.random()
        side = rng.choice(list(Side))
        owner = rng.randint(1, 6)
        stp = rng.choice(list(SelfTrade))
        if roll < 0.5:
            price = rng.randint(90, 110)
            post_only = rng.random() < 0.2
            yield ("limit", owner, side, price, rng.randint(1, 15), TimeInForce.GTC, post_only, stp)
        elif roll < 0.62:
            tif = rng.choice(list(TimeInForce))
            yield ("limit", owner, side, rng.randint(95, 105), rng.randint(1, 80), tif, False, stp)
        elif roll < 0.67:
            budget = rng.choice((0, rng.randint(1, 20_000)))
            tif = rng.choice(list(TimeInForce))
            yield ("market", owner, side, rng.randint(1, 80), tif, stp, budget)
        elif roll < 0.85:
            yield ("cancel", (rng.random() < 0.9, rng.randrange(10**6)), rng.random() < 0.95)
        else:
            price = rng.choice((None, rng.randint(90, 110)))
            qty = rng.choice((None, rng.randint(1, 20)))
            yield ("amend", (rng.random() < 0.9, rng.randrange(10**6)), price, qty)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 400))
def test_long_busy_streams_keep_the_book_sound(seed: int, cut: int) -> None:
    book, commands = check_stream(long_stream(random.Random(seed), 400))
    assert book.last_trade_id > 0
    check_replay(commands, cut, book)


def check_replay(commands: list[Command], cut: int, final: Book) -> None:
    """Runs ``commands`` to ``cut``, snapshots through JSON, and runs the rest twice: on the
    original book and on the restored one; both must say and end the same."""
    original = Book(SPEC)
    for cmd in commands[:cut]:
        original.apply(cmd)
    saved = json.dumps(original.snapshot())
    tail_events = [original.apply(cmd) for cmd in commands[cut:]]
    restored = Book.restore(SPEC, json.loads(saved))
    assert [restored.apply(cmd) for cmd in commands[cut:]] == tail_events
    assert restored.snapshot() == original.snapshot() == final.snapshot()
    assert restored.orders() == original.orders()
    assert restored.depth(100) == original.depth(100)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams, st.integers(0, 120))
def test_replay_from_a_snapshot_gives_the_same_events_and_book(
    stream: list[Recipe], cut: int
) -> None:
    book = Book(SPEC)
    known: list[int] = []
    commands: list[Command] = []
    for recipe in stream:
        cmd = materialize(recipe, book, known)
        commands.append(cmd)
        events = book.apply(cmd)
        if isinstance(events[0], Accepted):
            known.append(events[0].order_id)
    check_replay(commands, min(cut, len(commands)), book)
