"""The project's own markets as candles: recorded from the feed's prices as each one closes, and,
for a simulator market with too little history, made up backwards with the simulator's GBM.

The recorder is a price listener of the market feed (``MarketFeed(listeners=[...])``), wired
where the app is assembled: the feed knows nothing of signals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import structlog
from sqlalchemy import func
from sqlmodel import col, select

from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.market.candles import Candle, CandleBuilder
from backend.market.markets import Market
from backend.market.simulator import SECONDS_PER_YEAR
from backend.signals import history
from backend.signals.candles import Candles
from backend.signals.models import CandleSource, SignalCandle

log = structlog.get_logger(__name__)

# Price steps per made-up candle: a minute each on hourly candles, enough for a high and a low
# that look like the feed's (which sees a price every half second).
STEPS_PER_CANDLE = 60


class CandleRecorder:
    """Builds ``interval`` candles from the feed's ticks and stores each one as it closes.

    The first candle after a start is partial (the process started inside it), so it is not
    stored: a gap is honest, an hour made of its last ten minutes is not."""

    def __init__(
        self,
        db: Database,
        markets: Sequence[Market],
        interval: str,
        *,
        on_closed: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.markets = {market.symbol: market for market in markets}
        self.interval = interval
        self.builder = CandleBuilder(history.interval_seconds(interval))
        self.on_closed = on_closed
        self.clock = clock
        self._first: dict[str, int] = {}

    async def on_prices(self, prices: Mapping[str, int]) -> None:
        now = self.clock()
        closed: list[Candle] = []
        for symbol, ticks in prices.items():
            if symbol not in self.markets:
                continue
            current, done = self.builder.update(symbol, ticks, now)
            first = self._first.setdefault(symbol, current.open_time)
            if done is not None and done.open_time > first:
                closed.append(done)
        if not closed:
            return
        async with unit_of_work(self.db) as uow:
            for candle in closed:
                market = self.markets[candle.market]
                o, h, lo, c = (
                    float(market.to_price(t))
                    for t in (candle.open, candle.high, candle.low, candle.close)
                )
                # The feed has no volume; its price updates per candle stand in, as in its
                # own candles' ``trades``.
                await history.record_candle(
                    uow, candle.market, self.interval, candle.open_time, o, h, lo, c, candle.trades
                )
        log.info(
            "signal_candles_recorded",
            markets=[c.market for c in closed],
            time=closed[0].open_time,
        )
        if self.on_closed is not None:
            self.on_closed()


async def backfill(
    db: Database,
    markets: Sequence[Market],
    interval: str,
    hours: int,
    *,
    volume: float,
    now: float | None = None,
    seed: int | None = None,
) -> dict[str, int]:
    """Give every market at least ``hours`` candles, the missing ones made up before its
    earliest (or, with none, up to the current period), ending where the market's history
    starts: at its first candle's open, or at the simulator's start price.  Returns how many
    each market got; stored with source ``simulator``."""
    step = history.interval_seconds(interval)
    count_bars = max(1, round(hours * 3600 / step))
    now = time.time() if now is None else now
    added: dict[str, int] = {}
    for index, market in enumerate(markets):
        async with unit_of_work(db) as uow:
            stored = (
                await uow.session.exec(
                    select(func.count(), func.min(col(SignalCandle.time))).where(
                        col(SignalCandle.market) == market.symbol,
                        col(SignalCandle.interval) == interval,
                    )
                )
            ).one()
            have, earliest = int(stored[0]), stored[1]
            missing = count_bars - have
            if missing <= 0:
                continue
            if earliest is None:
                end, anchor = int(now // step) * step, float(market.start_price)
            else:
                first = await uow.session.exec(
                    select(col(SignalCandle.open)).where(
                        col(SignalCandle.market) == market.symbol,
                        col(SignalCandle.interval) == interval,
                        col(SignalCandle.time) == earliest,
                    )
                )
                end, anchor = int(earliest), float(first.one())
            rng = np.random.default_rng(None if seed is None else [seed, index])
            candles = simulated_history(market, anchor, end, missing, step, volume, rng)
            added[market.symbol] = await history.import_candles(
                uow, market.symbol, interval, candles, CandleSource.SIMULATOR
            )
    if added:
        log.info("signal_candles_backfilled", markets=added, source=CandleSource.SIMULATOR.value)
    return added


def simulated_history(
    market: Market,
    last_close: float,
    end: int,
    count: int,
    step: int,
    volume: float,
    rng: np.random.Generator,
) -> Candles:
    """``count`` candles of GBM with the market's volatility (no drift, like the simulator),
    the last one closing at ``last_close`` just before ``end``; prices on the tick grid."""
    sigma = market.annual_volatility * math.sqrt(step / STEPS_PER_CANDLE / SECONDS_PER_YEAR)
    shocks = rng.normal(-sigma * sigma / 2, sigma, count * STEPS_PER_CANDLE)
    log_path = np.concatenate([[0.0], np.cumsum(shocks)])
    path = last_close * np.exp(log_path - log_path[-1])
    tick = float(market.tick_size)
    path = np.maximum(np.round(path / tick) * tick, tick)
    blocks = np.lib.stride_tricks.sliding_window_view(path, STEPS_PER_CANDLE + 1)
    blocks = blocks[::STEPS_PER_CANDLE]
    times = end - step * np.arange(count, 0, -1, dtype=np.int64)
    return Candles(
        times,
        blocks[:, 0],
        blocks.max(axis=1),
        blocks.min(axis=1),
        blocks[:, -1],
        np.full(count, float(volume)),
    )
