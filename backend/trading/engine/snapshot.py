"""A book as plain data (JSON-ready lists, ints, strs), and back.

The journal's recovery point: a snapshot taken after command ``seq``, plus the journal's
commands after it, rebuild the same book.  Each side lists its orders in priority order (best
level first, oldest first within a level) as rows of ``ROW_FIELDS``; the counters carry over,
so ids assigned after a restore are the ones the book would have assigned anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from backend.trading.engine.commands import SelfTrade
from backend.trading.engine.levels import BookSide, Order
from backend.trading.engine.spec import MarketSpec

# Bumped when the layout changes, so an old snapshot is refused rather than misread.
SNAPSHOT_VERSION = 1
ROW_FIELDS = ("order_id", "owner", "price", "qty", "open", "stp", "post_only", "client_order_id")

OrderRow = list[int | str | bool | None]


class Snapshot(TypedDict):
    version: int
    symbol: str
    seq: int
    last_order_id: int
    last_trade_id: int
    bids: list[OrderRow]
    asks: list[OrderRow]


def dump_side(side: BookSide) -> list[OrderRow]:
    return [
        [o.order_id, o.owner, o.price, o.qty, o.open, o.stp.value, o.post_only, o.client_order_id]
        for o in side.orders()
    ]


def _int(value: object, what: str, low: int, high: int) -> int:
    # bool is an int to Python, never to a snapshot.
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"snapshot: bad {what}: {value!r}")
    return value


def load_side(
    side: BookSide,
    rows: object,
    spec: MarketSpec,
    last_order_id: int,
    index: dict[int, Order],
) -> None:
    """Appends ``rows`` to ``side`` in order, checking each; raises ValueError on bad data."""
    if not isinstance(rows, list):
        raise ValueError(f"snapshot: {side.side.value} orders must be a list")
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) != len(ROW_FIELDS):
            raise ValueError(f"snapshot: bad order row {row!r}")
        order_id_, owner_, price_, qty_, open_, stp, post_only, cid = row
        order_id = _int(order_id_, "order id", 1, last_order_id)
        if order_id in index:
            raise ValueError(f"snapshot: order {order_id} appears twice")
        owner = _int(owner_, "owner", -(2**63), 2**63 - 1)
        price = _int(price_, "price", 1, spec.max_price)
        qty = _int(qty_, "qty", 1, spec.max_qty)
        left = _int(open_, "open qty", 1, qty)
        if not isinstance(post_only, bool) or not (cid is None or isinstance(cid, str)):
            raise ValueError(f"snapshot: bad order row {row!r}")
        try:
            mode = SelfTrade(stp)
        except ValueError:
            raise ValueError(f"snapshot: bad self-trade mode {stp!r}") from None
        order = Order(order_id, owner, side.side, price, qty, left, mode, post_only, cid)
        side.add(order)
        index[order_id] = order


def check_header(data: Mapping[str, Any], spec: MarketSpec) -> tuple[int, int, int]:
    """The counters (seq, last order id, last trade id) of a snapshot meant for ``spec``."""
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot: version {data.get('version')!r}, expected {SNAPSHOT_VERSION}")
    if data.get("symbol") != spec.symbol:
        raise ValueError(f"snapshot: of {data.get('symbol')!r}, not {spec.symbol!r}")
    limit = 2**63 - 1
    return (
        _int(data.get("seq"), "seq", 0, limit),
        _int(data.get("last_order_id"), "last order id", 0, limit),
        _int(data.get("last_trade_id"), "last trade id", 0, limit),
    )


def check_uncrossed(bids: BookSide, asks: BookSide) -> None:
    if bids.keys and asks.keys and bids.keys[-1] >= -asks.keys[-1]:
        raise ValueError("snapshot: the book is crossed")
