"""What a book is asked to do: place, cancel, amend.

Commands are plain slotted dataclasses; the service journals them, and replaying the journal
from a snapshot gives the same book and the same events.  They are typed, so the engine checks
values (prices, quantities, combinations), not types.  Treat them as immutable: frozen
dataclasses cost four times as much to build.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    """Takes whatever is there; never rests.  Its time in force GTC is read as IOC."""


class TimeInForce(StrEnum):
    GTC = "GTC"
    """Good till cancelled: the remainder rests on the book."""
    IOC = "IOC"
    """Immediate or cancel: the remainder expires."""
    FOK = "FOK"
    """Fill or kill: filled in full at once, or rejected with nothing done."""


class SelfTrade(StrEnum):
    """Self-trade prevention: what happens when an order would trade with its owner's own.

    The incoming (taker) order's mode decides, as on Binance.
    """

    CANCEL_NEWEST = "cancel_newest"
    """Cancel the incoming order's remainder; the resting one stays."""
    CANCEL_OLDEST = "cancel_oldest"
    """Cancel the resting order and go on matching."""
    CANCEL_BOTH = "cancel_both"
    DECREMENT = "decrement"
    """Shrink both by the smaller open quantity, no trade (Coinbase's "decrease and cancel")."""


@dataclass(slots=True)
class Place:
    """A new order.  ``price`` in ticks (0 for a market order), ``qty`` in lots."""

    owner: int
    side: Side
    price: int
    qty: int
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    """Rejected rather than take liquidity; limit GTC only."""
    stp: SelfTrade = SelfTrade.CANCEL_NEWEST
    order_id: int = 0
    """0: the book assigns the next id.  A caller's id must exceed every id the book has seen."""
    client_order_id: str | None = None
    """Echoed in events; idempotency on it is the service's business."""
    quote_budget: int = 0
    """Market orders only: the most its fills may be worth in all (quote units); 0 = no cap.

    Matching stops at the first resting order not even one lot of which fits what is left;
    the rest of ``qty`` expires.  To spend an amount rather than buy a size, pass the budget
    and ``qty=spec.max_qty``."""


@dataclass(slots=True)
class Cancel:
    order_id: int
    owner: int


@dataclass(slots=True)
class Amend:
    """Cancel-replace in one step.  ``qty`` is the new total (filled included); None = as is.

    Shrinking the quantity at the same price keeps the order's place in the queue; any other
    change sends it to the back of its (new) level, and a new price that crosses trades at once.
    """

    order_id: int
    owner: int
    price: int | None = None
    qty: int | None = None


Command = Place | Cancel | Amend
