"""What a book reports back: one list of events per command, in the order things happened.

Events are slotted dataclasses (cheap to build, compared by value, matchable with ``match``);
the service translates them into journal rows, ledger transfers and hub messages.  Every amount
of money is in quote ledger units (see ``spec``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backend.trading.engine.commands import Side


class RejectReason(StrEnum):
    INVALID_PRICE = "INVALID_PRICE"
    """A limit price outside 1..max_price, or a price on a market order."""
    INVALID_QUANTITY = "INVALID_QUANTITY"
    """Outside 1..max_qty, or an amend to no more than what has already filled."""
    INVALID_ORDER = "INVALID_ORDER"
    """A combination the book does not take: post-only with IOC/FOK or a market order, a budget
    on a limit order, a negative budget."""
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    FOK_NOT_FILLABLE = "FOK_NOT_FILLABLE"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    """A market order against an empty side."""
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    """Cancel or amend of an order that is not resting (never was, filled, cancelled)."""
    NOT_OWNER = "NOT_OWNER"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    """A caller-assigned id not above every id the book has seen."""


class CancelReason(StrEnum):
    USER = "user"
    SELF_TRADE = "self_trade"


@dataclass(slots=True)
class Accepted:
    """The order passed every check and has an id; fills, a rest or an expiry follow."""

    order_id: int
    owner: int
    side: Side
    price: int
    """0 for a market order."""
    qty: int
    client_order_id: str | None


@dataclass(slots=True)
class Rejected:
    """Nothing changed.  ``order_id`` is the target of a cancel or amend, the caller's id of a
    place, or 0 for a place whose id the book would have assigned (none is used up)."""

    order_id: int
    owner: int
    reason: RejectReason
    client_order_id: str | None = None


@dataclass(slots=True)
class Trade:
    """One fill at the resting order's price; ``value`` = price * qty * quote units per tick·lot.

    Fees are in quote units, rounded up (see ``spec.fee``); a negative maker fee is a rebate.
    """

    trade_id: int
    price: int
    qty: int
    value: int
    taker_side: Side
    maker_order_id: int
    taker_order_id: int
    maker_owner: int
    taker_owner: int
    maker_fee: int
    taker_fee: int


@dataclass(slots=True)
class Cancelled:
    """``qty`` lots were taken off the order; ``open`` is what is left (0: the order is done).

    Self-trade decrement cancels part of an order, so ``open`` may stay above 0.
    """

    order_id: int
    owner: int
    qty: int
    open: int
    reason: CancelReason


@dataclass(slots=True)
class Expired:
    """The unfilled remainder of an IOC or market order (or one stopped by its budget)."""

    order_id: int
    owner: int
    qty: int


@dataclass(slots=True)
class Amended:
    """The order now has this price, total ``qty`` (filled included) and ``open`` quantity.

    ``priority_kept`` is False when it went to the back of its level; fills may follow.
    """

    order_id: int
    owner: int
    price: int
    qty: int
    open: int
    priority_kept: bool


@dataclass(slots=True)
class BookDelta:
    """L2: the total open quantity now at one price level; 0 = the level is gone."""

    side: Side
    price: int
    qty: int


Event = Accepted | Rejected | Trade | Cancelled | Expired | Amended | BookDelta
