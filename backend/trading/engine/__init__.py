"""The matching engine: pure, integer-only central limit order books.

Build a ``Book`` per market from its ``MarketSpec``; feed it commands (``Place``, ``Cancel``,
``Amend``) one at a time from a single writer; each returns its events.  ``snapshot()`` and
``Book.restore()`` make the recovery point that the service's journal replays from.
"""

from __future__ import annotations

from backend.trading.engine.book import Book
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
    Trade,
)
from backend.trading.engine.levels import OrderInfo
from backend.trading.engine.snapshot import ROW_FIELDS, SNAPSHOT_VERSION, Snapshot
from backend.trading.engine.spec import BPS, MarketSpec, fee

__all__ = [
    "BPS",
    "ROW_FIELDS",
    "SNAPSHOT_VERSION",
    "Accepted",
    "Amend",
    "Amended",
    "Book",
    "BookDelta",
    "Cancel",
    "CancelReason",
    "Cancelled",
    "Command",
    "Event",
    "Expired",
    "MarketSpec",
    "OrderInfo",
    "OrderType",
    "Place",
    "RejectReason",
    "Rejected",
    "SelfTrade",
    "Side",
    "Snapshot",
    "TimeInForce",
    "Trade",
    "fee",
]
