"""The markets the app quotes, and the conversion between integer ticks and price strings.

Prices travel through the domain as whole numbers of ticks (the market's price increment), so no
float rounding reaches a candle, an order or the ledger; Decimal appears only at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from backend.market.grid import InvalidAmount, parse_steps, to_steps


@dataclass(frozen=True, slots=True)
class Market:
    """One spot pair; ``tick_size`` is the smallest price step, as on the exchanges that list it."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    start_price: Decimal
    annual_volatility: float

    def __post_init__(self) -> None:
        if not self.tick_size.is_finite() or self.tick_size <= 0:
            raise ValueError(f"{self.symbol}: tick size must be positive, got {self.tick_size}")
        if self.annual_volatility < 0:
            raise ValueError(f"{self.symbol}: volatility must not be negative")
        if self.start_price <= 0:
            raise ValueError(f"{self.symbol}: start price must be positive")
        # Refused when the start price is off the tick grid: a typo here would skew every quote.
        try:
            self.to_ticks(self.start_price)
        except InvalidAmount as exc:
            raise ValueError(f"{self.symbol}: {exc.message}") from None

    @property
    def decimals(self) -> int:
        """Decimal places of a price: as many as the tick size has (0.0001 gives 4)."""
        exponent = self.tick_size.as_tuple().exponent
        assert isinstance(exponent, int)  # a finite Decimal, checked in __post_init__
        return max(0, -exponent)

    @property
    def start_ticks(self) -> int:
        return self.to_ticks(self.start_price)

    def to_ticks(self, price: Decimal) -> int:
        """A price as a whole number of ticks; a price off the tick grid is refused, not rounded
        (``InvalidAmount``, a ValueError)."""
        return to_steps(price, self.tick_size, "price")

    def parse_price(self, text: str, largest: int) -> int:
        """A price typed by a user (an order's limit, an alert's threshold) in ticks, at most
        ``largest``; anything else is ``InvalidAmount`` with code ``invalid_price``."""
        return parse_steps(text, self.tick_size, "price", largest)

    def to_price(self, ticks: int) -> Decimal:
        return (ticks * self.tick_size).quantize(self.tick_size)

    def price_str(self, ticks: int) -> str:
        """The wire form of a price: fixed-point with exactly the tick's decimal places."""
        return f"{self.to_price(ticks):f}"


# Tick sizes are the ones the big spot venues use: four decimals for a coin near $5, cents for the
# majors. Start prices and volatilities are round figures near recent levels: the simulator should
# look alive, not track the real price.
DEFAULT_MARKETS: tuple[Market, ...] = (
    Market(
        symbol="TON-USDT",
        base="TON",
        quote="USDT",
        tick_size=Decimal("0.0001"),
        start_price=Decimal("5.2000"),
        # Smaller cap, thinner books: TON swings more than the majors.
        annual_volatility=0.9,
    ),
    Market(
        symbol="ETH-USDT",
        base="ETH",
        quote="USDT",
        tick_size=Decimal("0.01"),
        start_price=Decimal("3500.00"),
        # Realised ETH volatility has sat around 60-80 % a year.
        annual_volatility=0.7,
    ),
    Market(
        symbol="BNB-USDT",
        base="BNB",
        quote="USDT",
        tick_size=Decimal("0.01"),
        start_price=Decimal("600.00"),
        # BNB moves a little less than ETH.
        annual_volatility=0.6,
    ),
)

_BY_SYMBOL: dict[str, Market] = {market.symbol: market for market in DEFAULT_MARKETS}


def market_by_symbol(symbol: str) -> Market:
    """The default market with this symbol; KeyError names the known ones."""
    try:
        return _BY_SYMBOL[symbol]
    except KeyError:
        known = ", ".join(_BY_SYMBOL)
        raise KeyError(f"unknown market {symbol!r}; known markets: {known}") from None
