"""What the trading API reads and says.  Prices and quantities are decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Decimal40 = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
ClientOrderId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]


class NewOrder(msgspec.Struct, forbid_unknown_fields=True):
    market: Annotated[str, msgspec.Meta(max_length=16)]
    side: Literal["buy", "sell"]
    qty: Decimal40
    """In the base asset (``1.5`` TON), a multiple of the market's lot size."""
    type: Literal["limit", "market"] = "limit"
    price: Decimal40 | None = None
    """Limit orders only: in the quote asset, a multiple of the tick size."""
    tif: Literal["GTC", "IOC", "FOK"] = "GTC"
    post_only: bool = False
    stp: Literal["cancel_newest", "cancel_oldest", "cancel_both", "decrement"] = "cancel_newest"
    """What happens when the order would trade with one of your own."""
    client_order_id: ClientOrderId | None = None
    """Your idempotency key: the same id again (same market) returns the first order."""


class AmendOrderBody(msgspec.Struct, forbid_unknown_fields=True):
    price: Decimal40 | None = None
    qty: Decimal40 | None = None
    """The new total quantity (filled included)."""


class OrderView(msgspec.Struct):
    id: int
    client_order_id: str | None
    market: str
    side: str
    type: str
    tif: str
    post_only: bool
    price: str | None
    qty: str
    filled: str
    status: str
    avg_price: str | None
    fee: str
    """Paid in the quote asset."""
    created_at: datetime
    updated_at: datetime


class MarketView(msgspec.Struct):
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_notional: str
    maker_fee_bps: int
    taker_fee_bps: int
    price_decimals: int
    qty_decimals: int
    last_price: str | None
    best_bid: str | None
    best_ask: str | None


class BookView(msgspec.Struct):
    market: str
    bids: list[list[str]]
    asks: list[list[str]]


class MarketTrade(msgspec.Struct):
    id: int
    price: str
    qty: str
    side: str
    """The taker's side."""
    at: int
    """Milliseconds since the epoch."""


class CandleView(msgspec.Struct):
    open_time: int
    """Seconds since the epoch."""
    open: str
    high: str
    low: str
    close: str
    volume: str
    trades: int


class MyTrade(msgspec.Struct):
    trade_id: int
    order_id: int
    market: str
    side: str
    price: str
    qty: str
    fee: str
    liquidity: Literal["maker", "taker"]
    at: int


class MyTradesPage(msgspec.Struct):
    trades: list[MyTrade]
    next: int | None
    """Pass as ``before`` for older trades; null on the last page."""


class FaucetView(msgspec.Struct):
    asset: str
    added: str
