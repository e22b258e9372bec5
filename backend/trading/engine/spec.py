"""A market as the matching engine sees it: whole ticks, whole lots, quote ledger units.

Prices are whole numbers of ticks and quantities whole numbers of lots.  Every amount of money
the engine reports (a trade's value, fees, the minimum notional, a market order's budget) is in
the quote asset's smallest ledger unit, so the ledger can move it as is.  One tick times one lot
must therefore be a whole number of quote units: ``quote_units_per_tick_lot``.  For ETH-USDT with
a 0.01 tick, a 0.0001 ETH lot and USDT held to 6 places, that is 0.01 * 0.0001 * 10**6 = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

# Fees are quoted in basis points: 10,000 of them make the whole.
BPS = 10_000
# PostgreSQL BIGINT, where the ledger keeps amounts: no order's value may exceed it.
MAX_VALUE = 2**63 - 1
# Default bounds on a price and a quantity: a billion of each is far beyond any sane order, and
# their product (10**18) still fits MAX_VALUE at one quote unit per tick·lot.
MAX_PRICE_TICKS = 10**9
MAX_QTY_LOTS = 10**9


def fee(value: int, bps: int) -> int:
    """``value * bps / 10,000``, rounded up: in the venue's favour.

    A positive rate charges at least the exact fee; a negative (maker rebate) rate pays at most
    the exact rebate.  Ceiling division keeps it integer: ``-((-value * bps) // BPS)``.
    """
    return -((-value * bps) // BPS)


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """The integer rules of one market; the decimal tick and lot sizes stay with the config."""

    symbol: str
    quote_units_per_tick_lot: int = 1
    """Quote ledger units in one tick * one lot: a trade's value is price * qty * this."""
    base_units_per_lot: int = 1
    """Base ledger units in one lot; the engine never needs it, the ledger does."""
    min_notional: int = 0
    """Smallest value (price * qty * quote_units_per_tick_lot, quote units) of a limit order or
    an amend; a market order has no price to hold it to."""
    maker_fee_bps: int = 0
    """Charged to the resting side of a trade; may be negative (a rebate)."""
    taker_fee_bps: int = 0
    """Charged to the incoming side of a trade."""
    max_price: int = MAX_PRICE_TICKS
    max_qty: int = MAX_QTY_LOTS

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("a market needs a symbol")
        if self.quote_units_per_tick_lot < 1:
            raise ValueError(f"{self.symbol}: quote units per tick·lot must be positive")
        if self.base_units_per_lot < 1:
            raise ValueError(f"{self.symbol}: base units per lot must be positive")
        if self.min_notional < 0:
            raise ValueError(f"{self.symbol}: min notional must not be negative")
        if not 0 <= self.taker_fee_bps <= BPS or not -BPS < self.maker_fee_bps <= BPS:
            raise ValueError(f"{self.symbol}: fee rates out of range")
        # A rebate larger than the taker fee would pay out more than the trade brings in.
        if self.maker_fee_bps + self.taker_fee_bps < 0:
            raise ValueError(f"{self.symbol}: the maker rebate exceeds the taker fee")
        if self.max_price < 1 or self.max_qty < 1:
            raise ValueError(f"{self.symbol}: price and quantity bounds must be positive")
        if self.value(self.max_price, self.max_qty) > MAX_VALUE:
            raise ValueError(f"{self.symbol}: max price * max qty would overflow a BIGINT")

    def value(self, price: int, qty: int) -> int:
        """What ``qty`` lots at ``price`` ticks are worth, in quote units."""
        return price * qty * self.quote_units_per_tick_lot

    def maker_fee(self, value: int) -> int:
        return fee(value, self.maker_fee_bps)

    def taker_fee(self, value: int) -> int:
        return fee(value, self.taker_fee_bps)
