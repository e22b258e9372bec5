"""Simulated prices: geometric Brownian motion per market, deterministic for a given seed.

GBM keeps prices positive and makes returns, not price differences, normally distributed, which
is how crypto prices look at the scale of a demo. Floats are used only inside; the simulator hands
out whole ticks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from backend.market.markets import DEFAULT_MARKETS, Market

# Crypto trades around the clock every day, so volatility is annualised over a calendar year of
# seconds, not over 252 trading days.
SECONDS_PER_YEAR = 365 * 24 * 60 * 60


class PriceSimulator:
    """Advances every market's price by ``dt`` seconds of GBM at each ``step``.

    Each market draws from its own generator seeded with the seed and the symbol, so a market's
    path depends only on the seed and the time steps, not on which other markets run beside it.
    The unrounded price is carried between steps so that rounding to the tick never accumulates.
    """

    def __init__(
        self,
        markets: Iterable[Market] = DEFAULT_MARKETS,
        seed: int | None = None,
        drift: float = 0.0,
    ) -> None:
        self.markets: tuple[Market, ...] = tuple(markets)
        if len({market.symbol for market in self.markets}) != len(self.markets):
            raise ValueError("market symbols must be unique")
        self.drift = drift
        self._rngs = {market.symbol: _generator(seed, market.symbol) for market in self.markets}
        # Prices in ticks, as floats, before rounding.
        self._ticks: dict[str, float] = {
            market.symbol: float(market.start_ticks) for market in self.markets
        }

    @property
    def prices(self) -> dict[str, int]:
        """The current price of every market, in whole ticks."""
        return {symbol: round(value) for symbol, value in self._ticks.items()}

    def step(self, dt_seconds: float) -> dict[str, int]:
        """Advance ``dt_seconds`` and return every market's new price in whole ticks (>= 1)."""
        if not math.isfinite(dt_seconds) or dt_seconds < 0:
            raise ValueError(f"time step must be a finite, non-negative number, got {dt_seconds}")
        if dt_seconds == 0:
            return self.prices
        dt = dt_seconds / SECONDS_PER_YEAR
        for market in self.markets:
            sigma = market.annual_volatility
            z = self._rngs[market.symbol].gauss(0.0, 1.0)
            growth = math.exp((self.drift - sigma * sigma / 2) * dt + sigma * math.sqrt(dt) * z)
            # The floor at one tick keeps a collapsed price quotable and able to move again.
            self._ticks[market.symbol] = max(1.0, self._ticks[market.symbol] * growth)
        return self.prices


def _generator(seed: int | None, symbol: str) -> random.Random:
    # Not for secrets: a reproducible stream is the point. A string seed is hashed with SHA-512,
    # so the stream does not depend on PYTHONHASHSEED.
    return random.Random(None if seed is None else f"{seed}:{symbol}")  # noqa: S311
