"""The matching engine, scenario by scenario: every order type, time in force, self-trade mode,
amend rule and rejection, with the exact events each command must produce."""

from __future__ import annotations

import gc
import json
from typing import Any, TypeVar

import pytest

from backend.trading.engine import (
    Accepted,
    Amend,
    Amended,
    Book,
    BookDelta,
    Cancel,
    Cancelled,
    CancelReason,
    Event,
    Expired,
    MarketSpec,
    OrderType,
    Place,
    Rejected,
    RejectReason,
    SelfTrade,
    Side,
    TimeInForce,
    Trade,
    fee,
)
from backend.trading.engine.levels import Order

BUY, SELL = Side.BUY, Side.SELL
IOC, FOK = TimeInForce.IOC, TimeInForce.FOK
USER, STP = CancelReason.USER, CancelReason.SELF_TRADE
SPEC = MarketSpec("ETH-USDT", maker_fee_bps=10, taker_fee_bps=20)
E = TypeVar("E")


def market(owner: int, side: Side, qty: int, **kw: Any) -> Place:
    return Place(owner, side, 0, qty, type=OrderType.MARKET, **kw)


def of(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def fills(events: list[Event]) -> list[tuple[int, int, int]]:
    """(maker order id, price, qty) of each trade, in order."""
    return [(t.maker_order_id, t.price, t.qty) for t in of(events, Trade)]


def rest(book: Book, owner: int, side: Side, price: int, qty: int, **kw: Any) -> int:
    events = book.apply(Place(owner, side, price, qty, **kw))
    accepted = of(events, Accepted)
    assert accepted and accepted[0].order_id in book, events
    return accepted[0].order_id


def reason(events: list[Event]) -> RejectReason:
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0].reason


@pytest.fixture
def book() -> Book:
    return Book(SPEC)


# The market spec and fees -------------------------------------------------------------------


def test_fees_round_up_in_the_venues_favour() -> None:
    assert fee(10_000, 1) == 1
    assert fee(10_001, 1) == 2  # 1.0001 charged as 2
    assert fee(1, 20) == 1  # any trade pays something at a positive rate
    assert fee(0, 20) == 0
    assert fee(15_000, -1) == -1  # a rebate of 1.5 pays 1
    assert fee(5_000, -1) == 0


def test_spec_refuses_what_would_lose_money_or_overflow() -> None:
    with pytest.raises(ValueError, match="rebate exceeds"):
        MarketSpec("X", maker_fee_bps=-5, taker_fee_bps=4)
    with pytest.raises(ValueError, match="overflow"):
        MarketSpec("X", quote_units_per_tick_lot=100)
    with pytest.raises(ValueError, match="positive"):
        MarketSpec("X", quote_units_per_tick_lot=0)
    with pytest.raises(ValueError, match="out of range"):
        MarketSpec("X", taker_fee_bps=10_001)
    assert MarketSpec("X", quote_units_per_tick_lot=100, max_qty=10**6).value(3, 4) == 1200


# Limit orders and priority ------------------------------------------------------------------


def test_gtc_order_rests_and_reports_its_level(book: Book) -> None:
    events = book.apply(Place(7, BUY, 100, 5, client_order_id="c1"))
    assert events == [Accepted(1, 7, BUY, 100, 5, "c1"), BookDelta(BUY, 100, 5)]
    events = book.apply(Place(8, BUY, 100, 3))
    assert events[-1] == BookDelta(BUY, 100, 8)
    book.apply(Place(9, SELL, 103, 2))
    assert (book.best_bid(), book.best_ask()) == (100, 103)
    assert book.depth(5) == ([(100, 8)], [(103, 2)])
    info = book.order(1)
    assert info is not None and (info.owner, info.open, info.client_order_id) == (7, 5, "c1")
    assert len(book) == 3 and book.seq == 3


def test_price_then_time_priority(book: Book) -> None:
    first = rest(book, 1, SELL, 101, 4)
    second = rest(book, 2, SELL, 101, 4)
    better = rest(book, 3, SELL, 100, 4)
    events = book.apply(Place(9, BUY, 101, 10))
    assert fills(events) == [(better, 100, 4), (first, 101, 4), (second, 101, 2)]
    assert book.depth(1) == ([], [(101, 2)])
    # The partly filled order kept its place at the head of its level.
    assert fills(book.apply(Place(9, BUY, 101, 1))) == [(second, 101, 1)]


def test_taker_trades_at_the_resting_price_and_the_rest_rests(book: Book) -> None:
    maker = rest(book, 1, SELL, 100, 3)
    events = book.apply(Place(2, BUY, 105, 5))
    assert events == [
        Accepted(2, 2, BUY, 105, 5, None),
        Trade(1, 100, 3, 300, BUY, maker, 2, 1, 2, 1, 1),
        BookDelta(SELL, 100, 0),
        BookDelta(BUY, 105, 2),
    ]
    assert book.depth(3) == ([(105, 2)], [])
    assert maker not in book


def test_fees_on_each_trade_use_quote_units() -> None:
    spec = MarketSpec(
        "BNB-USDT", quote_units_per_tick_lot=10, maker_fee_bps=-1, taker_fee_bps=7, max_qty=10**6
    )
    book = Book(spec)
    rest(book, 1, BUY, 60_001, 3)
    (trade,) = of(book.apply(Place(2, SELL, 60_000, 3)), Trade)
    assert trade.value == 60_001 * 3 * 10
    assert trade.maker_fee == -180  # a rebate of 180.003 pays 180
    assert trade.taker_fee == 1261  # 1260.021 charged as 1261
    assert trade.taker_side is SELL


# IOC, FOK, market ---------------------------------------------------------------------------


def test_ioc_fills_what_it_can_and_expires_the_rest(book: Book) -> None:
    maker = rest(book, 1, SELL, 100, 3)
    rest(book, 1, SELL, 102, 3)
    events = book.apply(Place(2, BUY, 101, 5, tif=IOC))
    assert fills(events) == [(maker, 100, 3)]
    assert events[-1] == Expired(3, 2, 2)
    assert 3 not in book and book.depth(2) == ([], [(102, 3)])


def test_ioc_that_crosses_nothing_is_accepted_then_expired(book: Book) -> None:
    events = book.apply(Place(2, BUY, 101, 5, tif=IOC))
    assert events == [Accepted(1, 2, BUY, 101, 5, None), Expired(1, 2, 5)]
    assert len(book) == 0


def test_fok_fills_in_full_across_levels(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 3)
    b = rest(book, 1, SELL, 101, 3)
    events = book.apply(Place(2, BUY, 101, 6, tif=FOK))
    assert fills(events) == [(a, 100, 3), (b, 101, 3)]
    assert not of(events, Expired) and len(book) == 0


def test_fok_that_cannot_fill_changes_nothing(book: Book) -> None:
    rest(book, 1, SELL, 100, 3)
    rest(book, 1, SELL, 102, 3)
    before = book.snapshot()
    assert reason(book.apply(Place(2, BUY, 101, 4, tif=FOK))) is RejectReason.FOK_NOT_FILLABLE
    after = book.snapshot()
    assert after["seq"] == before["seq"] + 1
    assert {**after, "seq": 0} == {**before, "seq": 0}


def test_market_order_sweeps_and_expires_what_is_left(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 2)
    b = rest(book, 1, SELL, 150, 2)
    events = book.apply(market(2, BUY, 5))
    assert events[0] == Accepted(3, 2, BUY, 0, 5, None)
    assert fills(events) == [(a, 100, 2), (b, 150, 2)]
    assert events[-1] == Expired(3, 2, 1)
    assert book.depth(1) == ([], [])


def test_market_order_gtc_never_rests_and_needs_liquidity(book: Book) -> None:
    assert reason(book.apply(market(2, BUY, 5))) is RejectReason.NO_LIQUIDITY
    rest(book, 1, BUY, 100, 2)
    events = book.apply(market(2, SELL, 5, tif=TimeInForce.GTC))
    assert events[-1] == Expired(2, 2, 3) and len(book) == 0
    assert book.last_order_id == 2  # the rejected one used no id


def test_market_buy_stops_at_its_quote_budget(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 2)
    b = rest(book, 1, SELL, 110, 5)
    events = book.apply(market(2, BUY, 10, quote_budget=450))
    # 200 on the first level, then 2 lots at 110 (220): a third would pass 450.
    assert fills(events) == [(a, 100, 2), (b, 110, 2)]
    assert sum(t.value for t in of(events, Trade)) == 420 <= 450
    assert events[-1] == Expired(3, 2, 6)
    assert book.depth(1) == ([], [(110, 3)])


def test_market_fok_respects_its_budget(book: Book) -> None:
    rest(book, 1, SELL, 100, 5)
    events = book.apply(market(2, BUY, 5, tif=FOK, quote_budget=499))
    assert reason(events) is RejectReason.FOK_NOT_FILLABLE
    assert len(of(book.apply(market(2, BUY, 5, tif=FOK, quote_budget=500)), Trade)) == 1


# Post-only ----------------------------------------------------------------------------------


def test_post_only_rests_or_is_rejected_if_it_would_take(book: Book) -> None:
    rest(book, 1, SELL, 101, 2)
    assert rest(book, 2, BUY, 100, 2, post_only=True) == 2
    events = book.apply(Place(2, BUY, 101, 2, post_only=True))
    assert reason(events) is RejectReason.POST_ONLY_WOULD_TAKE
    assert book.depth(2) == ([(100, 2)], [(101, 2)])


# Self-trade prevention ----------------------------------------------------------------------


@pytest.fixture
def own_ask_behind_other(book: Book) -> tuple[int, int, int]:
    """Asks: someone else's 2 @ 99, then owner 1's 5 @ 100, then someone else's 5 @ 101."""
    return rest(book, 2, SELL, 99, 2), rest(book, 1, SELL, 100, 5), rest(book, 3, SELL, 101, 5)


def test_stp_cancel_newest_cancels_the_incoming_order(
    book: Book, own_ask_behind_other: tuple[int, int, int]
) -> None:
    other, own, _ = own_ask_behind_other
    events = book.apply(Place(1, BUY, 101, 10, stp=SelfTrade.CANCEL_NEWEST))
    assert fills(events) == [(other, 99, 2)]
    assert Cancelled(4, 1, 8, 0, STP) in events
    assert own in book and 4 not in book
    assert book.depth(3) == ([], [(100, 5), (101, 5)])


def test_stp_cancel_oldest_cancels_the_resting_order_and_goes_on(
    book: Book, own_ask_behind_other: tuple[int, int, int]
) -> None:
    other, own, third = own_ask_behind_other
    events = book.apply(Place(1, BUY, 101, 10, stp=SelfTrade.CANCEL_OLDEST))
    assert fills(events) == [(other, 99, 2), (third, 101, 5)]
    assert Cancelled(own, 1, 5, 0, STP) in events
    assert BookDelta(SELL, 100, 0) in events
    assert book.depth(3) == ([(101, 3)], [])


def test_stp_cancel_both(book: Book, own_ask_behind_other: tuple[int, int, int]) -> None:
    other, own, _ = own_ask_behind_other
    events = book.apply(Place(1, BUY, 101, 10, stp=SelfTrade.CANCEL_BOTH))
    assert fills(events) == [(other, 99, 2)]
    assert of(events, Cancelled) == [Cancelled(own, 1, 5, 0, STP), Cancelled(4, 1, 8, 0, STP)]
    assert book.depth(3) == ([], [(101, 5)])


def test_stp_decrement_shrinks_both_by_the_smaller(
    book: Book, own_ask_behind_other: tuple[int, int, int]
) -> None:
    other, own, third = own_ask_behind_other
    events = book.apply(Place(1, BUY, 101, 10, stp=SelfTrade.DECREMENT))
    # 2 filled, then 5 cut from both (the resting order is gone), then 3 filled from the next.
    assert fills(events) == [(other, 99, 2), (third, 101, 3)]
    assert of(events, Cancelled) == [Cancelled(own, 1, 5, 0, STP), Cancelled(4, 1, 5, 3, STP)]
    assert 4 not in book and book.depth(3) == ([], [(101, 2)])


def test_stp_decrement_leaves_the_larger_resting_order_in_place(book: Book) -> None:
    own = rest(book, 1, SELL, 100, 10)
    behind = rest(book, 2, SELL, 100, 1)
    events = book.apply(Place(1, BUY, 100, 4, stp=SelfTrade.DECREMENT))
    assert of(events, Cancelled) == [Cancelled(own, 1, 4, 6, STP), Cancelled(3, 1, 4, 0, STP)]
    info = book.order(own)
    assert info is not None and (info.qty, info.open) == (6, 6)
    assert fills(book.apply(Place(3, BUY, 100, 7))) == [(own, 100, 6), (behind, 100, 1)]


def test_fok_counts_own_orders_as_unfillable_unless_they_go(book: Book) -> None:
    rest(book, 1, SELL, 100, 5)
    rest(book, 2, SELL, 100, 5)
    assert reason(book.apply(Place(1, BUY, 100, 5, tif=FOK))) is RejectReason.FOK_NOT_FILLABLE
    events = book.apply(Place(1, BUY, 100, 5, tif=FOK, stp=SelfTrade.CANCEL_OLDEST))
    assert of(events, Cancelled) == [Cancelled(1, 1, 5, 0, STP)] and len(of(events, Trade)) == 1


# Cancel and amend ---------------------------------------------------------------------------


def test_cancel_removes_the_order_and_its_quantity(book: Book) -> None:
    a = rest(book, 1, BUY, 100, 5)
    rest(book, 2, BUY, 100, 3)
    assert book.apply(Cancel(a, 1)) == [Cancelled(a, 1, 5, 0, USER), BookDelta(BUY, 100, 3)]
    assert reason(book.apply(Cancel(a, 1))) is RejectReason.UNKNOWN_ORDER
    assert reason(book.apply(Cancel(2, 1))) is RejectReason.NOT_OWNER
    assert reason(book.apply(Cancel(99, 1))) is RejectReason.UNKNOWN_ORDER
    assert book.depth(1) == ([(100, 3)], [])


def test_filled_order_can_no_longer_be_cancelled(book: Book) -> None:
    a = rest(book, 1, BUY, 100, 5)
    book.apply(Place(2, SELL, 100, 5))
    assert reason(book.apply(Cancel(a, 1))) is RejectReason.UNKNOWN_ORDER


def test_amend_shrinking_in_place_keeps_priority(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 10)
    b = rest(book, 2, SELL, 100, 10)
    events = book.apply(Amend(a, 1, qty=4))
    assert events == [Amended(a, 1, 100, 4, 4, True), BookDelta(SELL, 100, 14)]
    assert fills(book.apply(Place(3, BUY, 100, 5))) == [(a, 100, 4), (b, 100, 1)]


def test_amend_to_the_same_price_and_qty_changes_nothing(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 10)
    b = rest(book, 2, SELL, 100, 10)
    assert book.apply(Amend(a, 1, price=100, qty=10)) == [Amended(a, 1, 100, 10, 10, True)]
    assert fills(book.apply(Place(3, BUY, 100, 11))) == [(a, 100, 10), (b, 100, 1)]


def test_amend_growing_loses_priority(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 10)
    b = rest(book, 2, SELL, 100, 10)
    events = book.apply(Amend(a, 1, qty=12))
    assert events == [Amended(a, 1, 100, 12, 12, False), BookDelta(SELL, 100, 22)]
    assert fills(book.apply(Place(3, BUY, 100, 11))) == [(b, 100, 10), (a, 100, 1)]


def test_amend_to_a_new_price_moves_to_the_back_of_that_level(book: Book) -> None:
    a = rest(book, 1, BUY, 100, 5)
    b = rest(book, 2, BUY, 99, 5)
    events = book.apply(Amend(a, 1, price=99))
    assert events == [
        Amended(a, 1, 99, 5, 5, False),
        BookDelta(BUY, 100, 0),
        BookDelta(BUY, 99, 10),
    ]
    assert fills(book.apply(Place(3, SELL, 99, 6))) == [(b, 99, 5), (a, 99, 1)]


def test_amend_counts_the_total_quantity_filled_included(book: Book) -> None:
    a = rest(book, 1, SELL, 100, 10)
    book.apply(Place(2, BUY, 100, 4))
    assert book.apply(Amend(a, 1, qty=8)) == [
        Amended(a, 1, 100, 8, 4, True),
        BookDelta(SELL, 100, 4),
    ]
    assert reason(book.apply(Amend(a, 1, qty=4))) is RejectReason.INVALID_QUANTITY


def test_amend_through_the_book_trades_as_taker(book: Book) -> None:
    maker = rest(book, 1, SELL, 101, 3)
    a = rest(book, 2, BUY, 100, 5)
    events = book.apply(Amend(a, 2, price=102))
    assert events[:2] == [Amended(a, 2, 102, 5, 5, False), BookDelta(BUY, 100, 0)]
    (trade,) = of(events, Trade)
    assert (trade.maker_order_id, trade.taker_order_id, trade.price, trade.qty) == (
        maker,
        a,
        101,
        3,
    )
    assert events[-1] == BookDelta(BUY, 102, 2)
    info = book.order(a)
    assert info is not None and (info.price, info.qty, info.open) == (102, 5, 2)


def test_amend_rejections_leave_the_order_alone(book: Book) -> None:
    rest(book, 1, SELL, 101, 3)
    a = rest(book, 2, BUY, 100, 5, post_only=True)
    before = book.order(a)
    assert reason(book.apply(Amend(a, 2, price=101))) is RejectReason.POST_ONLY_WOULD_TAKE
    assert reason(book.apply(Amend(a, 3, qty=1))) is RejectReason.NOT_OWNER
    assert reason(book.apply(Amend(99, 2, qty=1))) is RejectReason.UNKNOWN_ORDER
    assert reason(book.apply(Amend(a, 2, price=0))) is RejectReason.INVALID_PRICE
    assert reason(book.apply(Amend(a, 2, qty=SPEC.max_qty + 1))) is RejectReason.INVALID_QUANTITY
    assert book.order(a) == before and book.depth(1) == ([(100, 5)], [(101, 3)])


def test_amend_is_held_to_the_min_notional() -> None:
    book = Book(MarketSpec("X", min_notional=500))
    a = rest(book, 1, BUY, 100, 5)
    assert reason(book.apply(Amend(a, 1, qty=4))) is RejectReason.BELOW_MIN_NOTIONAL
    assert reason(book.apply(Amend(a, 1, price=99))) is RejectReason.BELOW_MIN_NOTIONAL
    assert of(book.apply(Amend(a, 1, price=101)), Amended)


# Rejections and ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        (Place(1, BUY, 0, 5), RejectReason.INVALID_PRICE),
        (Place(1, BUY, SPEC.max_price + 1, 5), RejectReason.INVALID_PRICE),
        (Place(1, BUY, 3, 5, type=OrderType.MARKET), RejectReason.INVALID_PRICE),
        (Place(1, BUY, 100, 0), RejectReason.INVALID_QUANTITY),
        (Place(1, BUY, 100, -1), RejectReason.INVALID_QUANTITY),
        (Place(1, BUY, 100, SPEC.max_qty + 1), RejectReason.INVALID_QUANTITY),
        (Place(1, BUY, 100, 5, tif=IOC, post_only=True), RejectReason.INVALID_ORDER),
        (market(1, BUY, 5, post_only=True), RejectReason.INVALID_ORDER),
        (Place(1, BUY, 100, 5, quote_budget=100), RejectReason.INVALID_ORDER),
        (market(1, BUY, 5, quote_budget=-1), RejectReason.INVALID_ORDER),
        (Place(1, "buy", 100, 5), RejectReason.INVALID_ORDER),  # type: ignore[arg-type]
        (Place(1, BUY, 100, 5, tif="GTC"), RejectReason.INVALID_ORDER),  # type: ignore[arg-type]
        (Place(1, BUY, 100, 5, stp="decrement"), RejectReason.INVALID_ORDER),  # type: ignore[arg-type]
    ],
)
def test_place_rejections(book: Book, place: Place, expected: RejectReason) -> None:
    rest(book, 9, SELL, 200, 1)
    assert reason(book.apply(place)) is expected
    assert len(book) == 1 and book.last_order_id == 1


def test_below_min_notional_counts_quote_units() -> None:
    book = Book(MarketSpec("X", quote_units_per_tick_lot=2, min_notional=1_000))
    assert reason(book.apply(Place(1, BUY, 100, 4))) is RejectReason.BELOW_MIN_NOTIONAL
    assert rest(book, 1, BUY, 100, 5) == 1  # 100 * 5 * 2 = 1000


def test_ids_are_assigned_in_order_or_taken_from_the_caller(book: Book) -> None:
    assert rest(book, 1, BUY, 100, 1) == 1
    assert rest(book, 1, BUY, 100, 1, order_id=50) == 50
    assert rest(book, 1, BUY, 100, 1) == 51
    events = book.apply(Place(1, BUY, 100, 1, order_id=50, client_order_id="again"))
    assert events == [Rejected(50, 1, RejectReason.DUPLICATE_ORDER_ID, "again")]
    assert reason(book.apply(Place(1, BUY, 100, 1, order_id=7))) is RejectReason.DUPLICATE_ORDER_ID
    book.apply(Place(2, SELL, 100, 3))
    assert [t.trade_id for t in of(book.apply(Place(2, SELL, 100, 1)), Trade)] == []
    assert book.last_trade_id == 3


def test_orders_leaving_the_book_leave_no_reference_cycles(book: Book) -> None:
    """Freed by refcounting at once: cycles of long-resting orders would wait for a full
    collection and then pause the writer for as long as it takes to free them all.

    Checked by looking for this test's orders among the objects still alive with the
    collector off (a full ``gc.collect()`` count would include other tests' garbage)."""
    a, b, c = (9_000_000_001, 9_000_000_002, 9_000_000_003)
    gc.collect()
    gc.disable()
    try:
        for price in (100, 101, 102):
            for owner in (a, b, c):
                rest(book, owner, SELL, price, 2)
        book.apply(Cancel(5, b))
        book.apply(Amend(4, a, price=103))
        book.apply(Place(9, BUY, 101, 5))  # part of a level
        book.apply(Place(b, BUY, 102, 4, stp=SelfTrade.CANCEL_OLDEST))  # whole levels
        book.apply(Place(c, BUY, 0, 100, type=OrderType.MARKET, stp=SelfTrade.DECREMENT))
        assert len(book) == 0
        alive = [o for o in gc.get_objects() if type(o) is Order and o.owner in (a, b, c)]
        assert alive == []
    finally:
        gc.enable()


def test_apply_refuses_what_is_not_a_command(book: Book) -> None:
    with pytest.raises(TypeError):
        book.apply("cancel everything")  # type: ignore[arg-type]


# Snapshots ----------------------------------------------------------------------------------


def test_snapshot_survives_json_and_keeps_priority_and_counters(book: Book) -> None:
    a = rest(book, 1, SELL, 101, 4, client_order_id="x")
    b = rest(book, 2, SELL, 101, 4, stp=SelfTrade.DECREMENT)
    rest(book, 3, BUY, 99, 4, post_only=True)
    book.apply(Place(4, BUY, 101, 1))
    restored = Book.restore(SPEC, json.loads(json.dumps(book.snapshot())))
    assert restored.snapshot() == book.snapshot()
    assert restored.orders() == book.orders() and restored.depth(5) == book.depth(5)
    for copy in (book, restored):
        events = copy.apply(Place(5, BUY, 101, 5))
        assert fills(events) == [(a, 101, 3), (b, 101, 2)]
        assert events[0] == Accepted(5, 5, BUY, 101, 5, None)
        assert of(events, Trade)[0].trade_id == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version"),
        ({"symbol": "TON-USDT"}, "not"),
        ({"last_order_id": 1}, "order id"),
        ({"seq": True}, "seq"),
        (
            {"last_order_id": 3, "bids": [[3, 1, 102, 1, 1, "cancel_newest", False, None]]},
            "crossed",
        ),
        ({"bids": [[1, 1, 99, 1, 1, "cancel_newest", False, None]]}, "twice"),
        (
            {"last_order_id": 3, "bids": [[3, 1, 99, 1, 2, "cancel_newest", False, None]]},
            "open qty",
        ),
        ({"last_order_id": 3, "bids": [[3, 1, 99, 1, 1, "sometimes", False, None]]}, "self-trade"),
        ({"last_order_id": 3, "bids": [[3, 1, 99, 1, 1, "cancel_newest", 0, None]]}, "row"),
        ({"last_order_id": 3, "bids": [[3, 1, 99, 1, 1, "cancel_newest", False]]}, "row"),
        ({"asks": "nope"}, "list"),
    ],
)
def test_restore_refuses_what_no_book_could_produce(
    book: Book, change: dict[str, Any], message: str
) -> None:
    rest(book, 1, SELL, 101, 4)
    rest(book, 1, SELL, 102, 4)
    data: dict[str, Any] = {**book.snapshot(), **change}
    with pytest.raises(ValueError, match=message):
        Book.restore(SPEC, data)
