"""Market data: the quoted markets, simulated prices, candles, and the feed that publishes them."""

from __future__ import annotations

from backend.market.candles import Candle, CandleBuilder, DayWindow
from backend.market.feed import PRICES_TOPIC, MarketFeed, Publisher, candle_topic
from backend.market.markets import DEFAULT_MARKETS, Market, market_by_symbol
from backend.market.simulator import PriceSimulator

__all__ = [
    "DEFAULT_MARKETS",
    "PRICES_TOPIC",
    "Candle",
    "CandleBuilder",
    "DayWindow",
    "Market",
    "MarketFeed",
    "PriceSimulator",
    "Publisher",
    "candle_topic",
    "market_by_symbol",
]
