"""One market's central limit order book: price-time priority, integers only, no I/O.

A single writer drives it: each command returns the list of events it caused, in order.  Given
the same starting state (a fresh book or a snapshot) and the same commands, it returns the same
events and ends in the same state: there is no clock, no randomness and no hash-order iteration
inside.  Matching is the hot path and is written for CPython's speed: locals over attributes,
one loop, no generators, no allocation besides the orders and events themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.trading.engine.commands import (
    Amend,
    Cancel,
    Command,
    OrderType,
    Place,
    SelfTrade,
    Side,
    TimeInForce,
)
from backend.trading.engine.events import (
    Accepted,
    Amended,
    BookDelta,
    Cancelled,
    CancelReason,
    Event,
    Expired,
    Rejected,
    RejectReason,
)
from backend.trading.engine.levels import BookSide, Order, OrderInfo
from backend.trading.engine.matching import NO_LIMIT, fillable, match
from backend.trading.engine.snapshot import (
    SNAPSHOT_VERSION,
    Snapshot,
    check_header,
    check_uncrossed,
    dump_side,
    load_side,
)
from backend.trading.engine.spec import MarketSpec

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
NEWEST, OLDEST = SelfTrade.CANCEL_NEWEST, SelfTrade.CANCEL_OLDEST
BOTH, DECREMENT = SelfTrade.CANCEL_BOTH, SelfTrade.DECREMENT


class Book:
    """The order book of one market.  ``seq`` counts the commands it has processed."""

    __slots__ = ("_index", "asks", "bids", "last_order_id", "last_trade_id", "seq", "spec")

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.seq = 0
        self.last_order_id = 0
        """The highest order id seen; the book assigns the next one."""
        self.last_trade_id = 0
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self._index: dict[int, Order] = {}

    # Snapshots --------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The whole state as plain data; ``Book.restore`` rebuilds it exactly."""
        return {
            "version": SNAPSHOT_VERSION,
            "symbol": self.spec.symbol,
            "seq": self.seq,
            "last_order_id": self.last_order_id,
            "last_trade_id": self.last_trade_id,
            "bids": dump_side(self.bids),
            "asks": dump_side(self.asks),
        }

    @classmethod
    def restore(cls, spec: MarketSpec, data: Mapping[str, Any]) -> Book:
        """The book ``data`` (a ``snapshot()``, maybe through JSON) describes; checked, since it
        comes from storage: ValueError on anything a book could not have produced."""
        book = cls(spec)
        book.seq, book.last_order_id, book.last_trade_id = check_header(data, spec)
        load_side(book.bids, data.get("bids"), spec, book.last_order_id, book._index)
        load_side(book.asks, data.get("asks"), spec, book.last_order_id, book._index)
        check_uncrossed(book.bids, book.asks)
        return book

    # Commands ---------------------------------------------------------------------------------

    def apply(self, command: Command) -> list[Event]:
        """Runs any command: what the service's writer and a journal replay call."""
        if type(command) is Place:
            return self.place(command)
        if type(command) is Cancel:
            return self.cancel(command)
        if type(command) is Amend:
            return self.amend(command)
        raise TypeError(f"not a book command: {command!r}")

    def place(self, cmd: Place) -> list[Event]:
        self.seq += 1
        spec = self.spec
        owner, side, price, qty, tif = cmd.owner, cmd.side, cmd.price, cmd.qty, cmd.tif
        kind, stp = cmd.type, cmd.stp
        market = kind is MARKET
        budget = cmd.quote_budget
        reason: RejectReason | None = None
        # Enum members are compared by identity below: a raw string must not get that far.
        if not (
            (side is BUY or side is SELL)
            and (market or kind is LIMIT)
            and (tif is GTC or tif is IOC or tif is FOK)
            and (stp is NEWEST or stp is OLDEST or stp is BOTH or stp is DECREMENT)
        ):
            reason = RejectReason.INVALID_ORDER
        elif qty <= 0 or qty > spec.max_qty:
            reason = RejectReason.INVALID_QUANTITY
        elif market:
            if price:
                reason = RejectReason.INVALID_PRICE
            elif cmd.post_only or budget < 0:
                reason = RejectReason.INVALID_ORDER
        elif price <= 0 or price > spec.max_price:
            reason = RejectReason.INVALID_PRICE
        elif budget or (cmd.post_only and tif is not GTC):
            reason = RejectReason.INVALID_ORDER
        elif price * qty * spec.quote_units_per_tick_lot < spec.min_notional:
            reason = RejectReason.BELOW_MIN_NOTIONAL
        order_id = cmd.order_id
        if not order_id:
            order_id = self.last_order_id + 1
        elif order_id <= self.last_order_id and reason is None:
            reason = RejectReason.DUPLICATE_ORDER_ID
        # Keys on the opposite side that reach ``limit`` cross this order's price.
        if side is BUY:
            opp = self.asks
            limit = NO_LIMIT if market else -price
        else:
            opp = self.bids
            limit = NO_LIMIT if market else price
        keys = opp.keys
        crosses = bool(keys) and keys[-1] >= limit
        if reason is None:
            if cmd.post_only and crosses:
                reason = RejectReason.POST_ONLY_WOULD_TAKE
            elif market and not keys:
                reason = RejectReason.NO_LIQUIDITY
            elif tif is FOK and not fillable(
                qty, owner, stp, budget if market and budget else None, opp, limit, spec
            ):
                reason = RejectReason.FOK_NOT_FILLABLE
        if reason is not None:
            return [Rejected(cmd.order_id, owner, reason, cmd.client_order_id)]

        self.last_order_id = order_id
        cid = cmd.client_order_id
        order = Order(order_id, owner, side, price, qty, qty, stp, cmd.post_only, cid)
        events: list[Event] = [Accepted(order_id, owner, side, price, qty, cid)]
        if crosses:
            self.last_trade_id = match(
                order,
                opp,
                limit,
                budget if market and budget else None,
                spec,
                self._index,
                self.last_trade_id,
                events,
            )
        left = order.open
        if left:
            if tif is GTC and not market:
                self._index[order_id] = order
                own = self.bids if side is BUY else self.asks
                events.append(BookDelta(side, price, own.add(order)))
            else:
                events.append(Expired(order_id, owner, left))
        return events

    def cancel(self, cmd: Cancel) -> list[Event]:
        self.seq += 1
        order = self._index.get(cmd.order_id)
        if order is None:
            return [Rejected(cmd.order_id, cmd.owner, RejectReason.UNKNOWN_ORDER)]
        if order.owner != cmd.owner:
            return [Rejected(cmd.order_id, cmd.owner, RejectReason.NOT_OWNER)]
        del self._index[cmd.order_id]
        side = order.side
        left = (self.bids if side is BUY else self.asks).remove(order)
        return [
            Cancelled(order.order_id, order.owner, order.open, 0, CancelReason.USER),
            BookDelta(side, order.price, left),
        ]

    def amend(self, cmd: Amend) -> list[Event]:
        self.seq += 1
        order_id, owner = cmd.order_id, cmd.owner
        order = self._index.get(order_id)
        if order is None:
            return [Rejected(order_id, owner, RejectReason.UNKNOWN_ORDER)]
        if order.owner != owner:
            return [Rejected(order_id, owner, RejectReason.NOT_OWNER)]
        spec = self.spec
        old_price = order.price
        price = old_price if cmd.price is None else cmd.price
        qty = order.qty if cmd.qty is None else cmd.qty
        filled = order.qty - order.open
        reason: RejectReason | None = None
        if price <= 0 or price > spec.max_price:
            reason = RejectReason.INVALID_PRICE
        elif qty <= filled or qty > spec.max_qty:
            reason = RejectReason.INVALID_QUANTITY
        elif spec.value(price, qty) < spec.min_notional:
            reason = RejectReason.BELOW_MIN_NOTIONAL
        if reason is not None:
            return [Rejected(order_id, owner, reason)]
        left = qty - filled
        side = order.side
        if price == old_price and left <= order.open:
            # Only shrinking in place: the order keeps its place in the queue.
            cut = order.open - left
            order.qty, order.open = qty, left
            level = order.level
            assert level is not None
            level.total -= cut
            events: list[Event] = [Amended(order_id, owner, price, qty, left, True)]
            if cut:
                events.append(BookDelta(side, price, level.total))
            return events

        if side is BUY:
            own, opp, limit = self.bids, self.asks, -price
        else:
            own, opp, limit = self.asks, self.bids, price
        crosses = bool(opp.keys) and opp.keys[-1] >= limit
        if crosses and order.post_only:
            return [Rejected(order_id, owner, RejectReason.POST_ONLY_WOULD_TAKE)]
        del self._index[order_id]
        remaining_at_old = own.remove(order)
        order.price, order.qty, order.open = price, qty, left
        events = [Amended(order_id, owner, price, qty, left, False)]
        if price != old_price:
            events.append(BookDelta(side, old_price, remaining_at_old))
        if crosses:
            self.last_trade_id = match(
                order, opp, limit, None, spec, self._index, self.last_trade_id, events
            )
        if order.open:
            self._index[order_id] = order
            events.append(BookDelta(side, price, own.add(order)))
        return events

    # Queries ----------------------------------------------------------------------------------

    def best_bid(self) -> int | None:
        """The highest bid price: the last key of the sorted level list, O(1)."""
        keys = self.bids.keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        keys = self.asks.keys
        return -keys[-1] if keys else None

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """L2: the best ``n`` levels of each side as (price, qty), best first: bids, asks."""
        return self.bids.depth(n), self.asks.depth(n)

    def order(self, order_id: int) -> OrderInfo | None:
        """A resting order, or None once it is filled, cancelled or expired (or never was)."""
        order = self._index.get(order_id)
        return None if order is None else order.info()

    def orders(self) -> list[OrderInfo]:
        """Every resting order: bids then asks, each in priority order."""
        return [order.info() for side in (self.bids, self.asks) for order in side.orders()]

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._index
