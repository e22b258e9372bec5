"""The market feed: runs the simulator on a clock and publishes prices and candles to the hub.

The feed knows nothing of sockets or of which process should run it; it only needs something
that can ``publish``. The hub provides that and decides who runs the feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import structlog

from backend.hub.protocol import Kind
from backend.market.candles import Candle, CandleBuilder, DayWindow
from backend.market.markets import DEFAULT_MARKETS, Market
from backend.market.simulator import PriceSimulator

log = structlog.get_logger(__name__)

PRICES_TOPIC = "prices"
# Twice a second looks live on a phone without flooding slow connections.
DEFAULT_INTERVAL = 0.5

PriceListener = Callable[[dict[str, int]], Awaitable[None]]
"""Called after each tick is published with every market's price in ticks (e.g. the alert
watcher); it runs inside the tick, so it must be quick."""


class Publisher(Protocol):
    """What the feed needs from the hub; ``kind`` is "snapshot", "delta" or "event".

    ``state``, when given, is what the hub keeps for the topic and hands to new subscribers.
    Returns the sequence number the message got.
    """

    async def publish(
        self,
        topic: str,
        kind: Kind,
        data: dict[str, Any],
        *,
        state: dict[str, Any] | None = None,
    ) -> int: ...


def candle_topic(symbol: str, timeframe: str = "1m") -> str:
    return f"candles:{symbol}:{timeframe}"


class MarketFeed:
    """Steps the simulated prices by the time the clock says has passed, then publishes them."""

    def __init__(
        self,
        publisher: Publisher,
        markets: Iterable[Market] = DEFAULT_MARKETS,
        *,
        interval: float = DEFAULT_INTERVAL,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        listeners: Iterable[PriceListener] = (),
        candles: bool = True,
    ) -> None:
        """``candles``: publish the candle topics; off when the order books draw them from
        trades (backend/trading/publish.py)."""
        if interval <= 0:
            raise ValueError("the feed interval must be positive")
        self.publisher = publisher
        # The simulator refuses duplicate symbols before the dict below could hide them.
        self.simulator = PriceSimulator(markets, seed=seed)
        self.markets: dict[str, Market] = {m.symbol: m for m in self.simulator.markets}
        self.interval = interval
        self.clock = clock
        self.candles = CandleBuilder()
        self._windows = {symbol: DayWindow() for symbol in self.markets}
        self._last_step: float | None = None
        self.listeners: list[PriceListener] = list(listeners)
        self.publish_candles = candles

    async def tick(self) -> None:
        """One step: advance by the elapsed time, publish prices and every market's candle, then
        hand the prices to the listeners.

        The first tick publishes the start prices. A clock stepping back counts as no time.
        """
        now = self.clock()
        elapsed = 0.0 if self._last_step is None else max(0.0, now - self._last_step)
        self._last_step = now
        prices = self.simulator.step(elapsed)
        ts = int(now * 1000)

        quotes: dict[str, Any] = {}
        candle_messages: list[tuple[str, Candle, Candle | None]] = []
        for symbol, market in self.markets.items():
            ticks = prices[symbol]
            window = self._windows[symbol]
            window.update(ticks, now)
            quotes[symbol] = {
                "price": market.price_str(ticks),
                "change_24h": window.change_24h(),
                "ts": ts,
            }
            current, closed = self.candles.update(symbol, ticks, now)
            candle_messages.append((symbol, current, closed))

        # Separate objects for the message and the kept state, so the hub may change either.
        await self.publisher.publish(
            PRICES_TOPIC,
            "delta",
            {"markets": quotes},
            state={"markets": {symbol: dict(quote) for symbol, quote in quotes.items()}},
        )
        for symbol, current, closed in candle_messages if self.publish_candles else []:
            market = self.markets[symbol]
            topic = candle_topic(symbol, current.timeframe)
            if closed is not None:
                await self.publisher.publish(
                    topic, "event", {"closed": candle_wire(market, closed)}
                )
            await self.publisher.publish(
                topic,
                "delta",
                {"candle": candle_wire(market, current)},
                state=candle_wire(market, current),
            )
        for listener in self.listeners:
            try:
                await listener(dict(prices))
            except Exception:
                # A listener's trouble (a database blip) must not stop the prices.
                log.exception("market_feed_listener_failed", listener=repr(listener))

    async def run(self) -> None:
        """Tick every ``interval`` seconds until cancelled; a failed tick is logged, not fatal."""
        loop = asyncio.get_running_loop()
        log.info("market_feed_started", markets=list(self.markets), interval=self.interval)
        try:
            while True:
                started = loop.time()
                try:
                    await self.tick()
                except Exception:
                    log.exception("market_feed_tick_failed")
                # Time spent publishing comes out of the pause, so ticks keep their pace.
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
        finally:
            log.info("market_feed_stopped")


def candle_wire(market: Market, candle: Candle) -> dict[str, Any]:
    """A candle as it goes out: prices as strings with the tick's decimals."""
    return {
        "market": candle.market,
        "timeframe": candle.timeframe,
        "open_time": candle.open_time,
        "open": market.price_str(candle.open),
        "high": market.price_str(candle.high),
        "low": market.price_str(candle.low),
        "close": market.price_str(candle.close),
        "trades": candle.trades,
    }
