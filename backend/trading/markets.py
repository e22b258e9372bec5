"""The markets users trade: the quoted markets plus lot size, minimum order and fees, and the
conversions between the engine's integers (ticks, lots, ledger units) and decimal strings."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from backend.ledger.assets import ASSETS, Asset
from backend.market.grid import InvalidAmount as InvalidAmount  # raised by ticks(), lots()
from backend.market.grid import parse_steps
from backend.market.markets import DEFAULT_MARKETS, Market
from backend.trading.engine import MarketSpec

# Lot sizes as the big spot venues set them: a few cents' worth of the base asset.
LOT_SIZES = {
    "TON-USDT": Decimal("0.01"),
    "ETH-USDT": Decimal("0.0001"),
    "BNB-USDT": Decimal("0.001"),
}
# The smallest order, in USDT: dust orders cost more to carry than they are worth.
MIN_NOTIONAL = Decimal("1")
# A hundred million lots (a million ETH, BNB or TON) is beyond any real order, and keeps the
# largest order's value inside a BIGINT at every market's tick and lot.
MAX_QTY_LOTS = 10**8


@dataclass(frozen=True, slots=True)
class TradingMarket:
    market: Market
    lot_size: Decimal
    spec: MarketSpec

    @property
    def symbol(self) -> str:
        return self.market.symbol

    @property
    def base(self) -> Asset:
        return ASSETS[self.market.base]

    @property
    def quote(self) -> Asset:
        return ASSETS[self.market.quote]

    @property
    def qty_decimals(self) -> int:
        exponent = self.lot_size.as_tuple().exponent
        assert isinstance(exponent, int)
        return max(0, -exponent)

    def ticks(self, price: str) -> int:
        """An order's price in ticks, within what the engine takes (``InvalidAmount``)."""
        return self.market.parse_price(price, self.spec.max_price)

    def lots(self, qty: str) -> int:
        """An order's quantity in lots, within what the engine takes (``InvalidAmount``)."""
        return parse_steps(qty, self.lot_size, "quantity", self.spec.max_qty)

    def price_str(self, ticks: int) -> str:
        return self.market.price_str(ticks)

    def qty_str(self, lots: int) -> str:
        return f"{(lots * self.lot_size).quantize(self.lot_size):f}"


def trading_market(market: Market, maker_fee_bps: int, taker_fee_bps: int) -> TradingMarket:
    lot = LOT_SIZES[market.symbol]
    base, quote = ASSETS[market.base], ASSETS[market.quote]
    per_tick_lot = market.tick_size * lot * 10**quote.scale
    per_lot = lot * 10**base.scale
    if per_tick_lot != per_tick_lot.to_integral_value() or per_lot != per_lot.to_integral_value():
        raise ValueError(f"{market.symbol}: a tick times a lot must be whole ledger units")
    spec = MarketSpec(
        symbol=market.symbol,
        quote_units_per_tick_lot=int(per_tick_lot),
        base_units_per_lot=int(per_lot),
        min_notional=int(MIN_NOTIONAL * 10**quote.scale),
        maker_fee_bps=maker_fee_bps,
        taker_fee_bps=taker_fee_bps,
        max_qty=MAX_QTY_LOTS,
    )
    return TradingMarket(market, lot, spec)


def trading_markets(maker_fee_bps: int, taker_fee_bps: int) -> dict[str, TradingMarket]:
    return {m.symbol: trading_market(m, maker_fee_bps, taker_fee_bps) for m in DEFAULT_MARKETS}
