"""An order as the trading service tracks it beside the book: fills, fees, and the funds it
still holds in escrow.  Pure: the writer changes these, ``persist`` stores them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from backend.clock import utcnow
from backend.trading.engine import MarketSpec, Side
from backend.trading.markets import TradingMarket
from backend.trading.models import OrderStatus


@dataclass(slots=True)
class OrderState:
    id: int
    user_id: int
    market: str
    side: Side
    type: str
    tif: str
    post_only: bool
    price: int
    qty: int
    client_order_id: str | None
    reserve_asset: str
    reserved: int = 0
    filled: int = 0
    cost: int = 0
    fee: int = 0
    status: OrderStatus = OrderStatus.OPEN
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def open(self) -> bool:
        return self.status is OrderStatus.OPEN

    def row(self) -> dict[str, Any]:
        """The ``orders`` row."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "market": self.market,
            "client_order_id": self.client_order_id,
            "side": self.side.value,
            "type": self.type,
            "tif": self.tif,
            "post_only": self.post_only,
            "price": self.price,
            "qty": self.qty,
            "filled": self.filled,
            "cost": self.cost,
            "fee": self.fee,
            "status": self.status.value,
            "reserved": self.reserved,
            "reserve_asset": self.reserve_asset,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_row(cls, row: Any) -> OrderState:
        return cls(
            id=row.id,
            user_id=row.user_id,
            market=row.market,
            side=Side(row.side),
            type=row.type,
            tif=row.tif,
            post_only=row.post_only,
            price=row.price,
            qty=row.qty,
            client_order_id=row.client_order_id,
            reserve_asset=row.reserve_asset,
            reserved=row.reserved,
            filled=row.filled,
            cost=row.cost,
            fee=row.fee,
            status=OrderStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def limit_hold(spec: MarketSpec, side: Side, price: int, open_lots: int) -> int:
    """What a resting limit order must hold for ``open_lots``: the base it may sell, or the
    quote it may pay at its limit price plus the taker fee (the higher rate, so the hold covers
    the order whichever side of its trades it ends up on)."""
    if side is Side.SELL:
        return open_lots * spec.base_units_per_lot
    value = spec.value(price, open_lots)
    return value + spec.taker_fee(value) + _rounding(spec, open_lots)


def _rounding(spec: MarketSpec, lots: int) -> int:
    """Fees are rounded up per trade, so fills can cost up to a unit each more than the fee on
    their sum; a trade is at least a lot, so ``lots`` units cover it (and go back at close)."""
    return lots if spec.taker_fee_bps else 0


def budget_for(spec: MarketSpec, hold: int, lots: int) -> int:
    """The most a market buy of ``lots`` holding ``hold`` may trade: its value plus the taker
    fee, rounded up per trade, must fit the hold."""
    room = hold - _rounding(spec, lots)
    value = room * 10_000 // (10_000 + spec.taker_fee_bps)
    while value > 0 and value + spec.taker_fee(value) > room:
        value -= 1
    return max(0, value)


def view(market: TradingMarket, order: OrderState) -> dict[str, Any]:
    """The order as the API and the user's live topic show it."""
    avg = None
    if order.filled:
        # Decimal, quantized to the tick: an average of fills is usually between two ticks.
        ticks = Decimal(order.cost) / (order.filled * market.spec.quote_units_per_tick_lot)
        avg = f"{(ticks * market.market.tick_size).quantize(market.market.tick_size):f}"
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "market": order.market,
        "side": order.side.value,
        "type": order.type,
        "tif": order.tif,
        "post_only": order.post_only,
        "price": market.price_str(order.price) if order.price else None,
        "qty": market.qty_str(order.qty),
        "filled": market.qty_str(order.filled),
        "status": order.status.value,
        "avg_price": avg,
        "fee": market.quote.format(order.fee),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
