"""Matching an incoming order against the other side: the engine's hot path.

Written for CPython's speed rather than elegance: everything it touches is bound to a local
first, one loop walks the levels from the best and the orders from each level's head, fees are
integer ceiling divisions inline, and a fully filled resting order is dropped by moving the
head, without touching its neighbours one by one.  It leaves no reference cycles behind (a
cycle of resting orders promoted to the oldest generation waits for a full collection, which
then pauses for hundreds of milliseconds), so each order is freed as soon as it leaves.
"""

from __future__ import annotations

from backend.trading.engine.commands import SelfTrade
from backend.trading.engine.events import BookDelta, Cancelled, CancelReason, Event, Trade
from backend.trading.engine.levels import BookSide, Order
from backend.trading.engine.spec import BPS, MarketSpec

DECREMENT = SelfTrade.DECREMENT
CANCEL_NEWEST = SelfTrade.CANCEL_NEWEST
CANCEL_OLDEST = SelfTrade.CANCEL_OLDEST
CANCEL_BOTH = SelfTrade.CANCEL_BOTH
SELF_TRADE = CancelReason.SELF_TRADE
# Below every key a level can have (keys are ± prices): a market order's limit crosses them all.
NO_LIMIT = -(2**63)


def match(
    taker: Order,
    opp: BookSide,
    limit: int,
    budget: int | None,
    spec: MarketSpec,
    index: dict[int, Order],
    trade_id: int,
    events: list[Event],
) -> int:
    """Fills ``taker`` from ``opp``'s best level on while the level keys reach ``limit``.

    Leaves what could not fill in ``taker.open`` (a self-trade cancel of the taker sets it to
    0), drops filled and cancelled resting orders from ``index``, and returns the last trade id
    used.  ``budget`` (quote units) stops the fills before their value would exceed it.
    """
    keys, levels, append = opp.keys, opp.levels, events.append
    unit, maker_bps, taker_bps = (
        spec.quote_units_per_tick_lot,
        spec.maker_fee_bps,
        spec.taker_fee_bps,
    )
    maker_side, taker_side = opp.side, taker.side
    taker_id, owner, remaining = taker.order_id, taker.owner, taker.open
    spent = False
    while keys:
        key = keys[-1]
        if key < limit:
            break
        level = levels[key]
        price = level.price
        total = level.total
        order = level.head
        while order is not None:
            maker_open = order.open
            if order.owner == owner:
                mode = taker.stp
                if mode is DECREMENT:
                    cut = maker_open if maker_open < remaining else remaining
                    remaining -= cut
                    taker.qty -= cut
                    order.qty -= cut
                    order.open = maker_open - cut
                    total -= cut
                    append(Cancelled(order.order_id, owner, cut, order.open, SELF_TRADE))
                    append(Cancelled(taker_id, owner, cut, remaining, SELF_TRADE))
                    if order.open:
                        break  # the taker is used up; the resting order stays, smaller
                elif mode is CANCEL_NEWEST:
                    append(Cancelled(taker_id, owner, remaining, 0, SELF_TRADE))
                    remaining = 0
                    break
                else:
                    append(Cancelled(order.order_id, owner, maker_open, 0, SELF_TRADE))
                    order.open = 0
                    total -= maker_open
                    if mode is CANCEL_BOTH:
                        append(Cancelled(taker_id, owner, remaining, 0, SELF_TRADE))
                        remaining = 0
                del index[order.order_id]
                order.next, order = None, order.next
                if not remaining:
                    break
                continue
            qty = maker_open if maker_open < remaining else remaining
            value = price * qty * unit
            if budget is not None:
                if value > budget:
                    qty = budget // (price * unit)
                    if not qty:
                        spent = True
                        break
                    value = price * qty * unit
                budget -= value
            trade_id += 1
            append(
                Trade(
                    trade_id,
                    price,
                    qty,
                    value,
                    taker_side,
                    order.order_id,
                    taker_id,
                    order.owner,
                    owner,
                    -((-value * maker_bps) // BPS),
                    -((-value * taker_bps) // BPS),
                )
            )
            remaining -= qty
            total -= qty
            if qty != maker_open:
                order.open = maker_open - qty
                break
            order.open = 0
            del index[order.order_id]
            # Unlinked forwards, so the orders left behind form no cycle: refcounting frees
            # them at once, instead of the cyclic collector in one long pause much later.
            order.next, order = None, order.next
            if not remaining:
                break
        if total != level.total:
            level.total = total
            append(BookDelta(maker_side, price, total))
        if order is None:
            level.head = level.tail = None  # no cycle with its last orders either
            del levels[key]
            keys.pop()
        else:
            level.head = order
            order.prev = None
        if spent or not remaining:
            break
    taker.open = remaining
    return trade_id


def fillable(
    qty: int,
    owner: int,
    stp: SelfTrade,
    budget: int | None,
    opp: BookSide,
    limit: int,
    spec: MarketSpec,
) -> bool:
    """Whether a fill-or-kill order would fill in full: ``match``, dry.

    An own resting order met on the way stops it (the taker would be cancelled or decremented)
    unless the mode cancels the resting order instead.
    """
    unit = spec.quote_units_per_tick_lot
    levels = opp.levels
    for key in reversed(opp.keys):
        if key < limit:
            return False
        level = levels[key]
        order = level.head
        while order is not None:
            if order.owner == owner:
                if stp is not CANCEL_OLDEST:
                    return False
            else:
                take = order.open if order.open < qty else qty
                if budget is not None:
                    budget -= level.price * take * unit
                    if budget < 0:
                        return False
                qty -= take
                if not qty:
                    return True
            order = order.next
    return False
