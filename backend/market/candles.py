"""Candles and the 24-hour change, built from a stream of (price in ticks, time) updates."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

# One-minute candles are the finest the charts draw; coarser ones are aggregated client-side.
MINUTE_SECONDS = 60
# "24h change" is the figure every exchange ticker shows.
DAY_SECONDS = 24 * 60 * 60
# Percentages go out with two decimals, as tickers show them.
PERCENT_QUANTUM = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Candle:
    """One period of one market; prices in ticks, ``open_time`` in epoch seconds."""

    market: str
    timeframe: str
    open_time: int
    open: int
    high: int
    low: int
    close: int
    # How many price updates fell in the period, a stand-in for volume in a simulator.
    trades: int


def timeframe_label(seconds: int) -> str:
    """The usual short name of a period: 60 -> "1m", 3600 -> "1h"."""
    for unit, size in (("d", DAY_SECONDS), ("h", 3600), ("m", MINUTE_SECONDS)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class CandleBuilder:
    """The current candle of every market, rolled over at period boundaries.

    Periods without updates get no candle; an update stamped before the current candle's period
    (a clock stepping back) is folded into the current candle rather than reopening a closed one.
    """

    def __init__(self, timeframe_seconds: int = MINUTE_SECONDS) -> None:
        if timeframe_seconds <= 0:
            raise ValueError("timeframe must be a positive number of seconds")
        self.timeframe_seconds = timeframe_seconds
        self.timeframe = timeframe_label(timeframe_seconds)
        self._current: dict[str, Candle] = {}

    def current(self, market: str) -> Candle | None:
        return self._current.get(market)

    def update(self, market: str, ticks: int, at: float) -> tuple[Candle, Candle | None]:
        """Fold one price in; returns the current candle and the one this update closed, if any."""
        open_time = int(at // self.timeframe_seconds) * self.timeframe_seconds
        candle = self._current.get(market)
        closed: Candle | None = None
        if candle is None or open_time > candle.open_time:
            closed = candle
            candle = Candle(market, self.timeframe, open_time, ticks, ticks, ticks, ticks, 1)
        else:
            candle = replace(
                candle,
                high=max(candle.high, ticks),
                low=min(candle.low, ticks),
                close=ticks,
                trades=candle.trades + 1,
            )
        self._current[market] = candle
        return candle, closed


class DayWindow:
    """The change over the last 24 hours of one market, to the minute.

    Keeps the last close of each minute for a day (a bounded deque, 1440 entries). The reference
    is the last price at or before the start of the window: the close of the newest minute that
    has slid out, or the first price seen while less than a day of history exists.
    """

    def __init__(
        self, window_seconds: int = DAY_SECONDS, bucket_seconds: int = MINUTE_SECONDS
    ) -> None:
        if bucket_seconds <= 0 or window_seconds % bucket_seconds:
            raise ValueError("the window must be a whole number of positive buckets")
        self.window_seconds = window_seconds
        self.bucket_seconds = bucket_seconds
        # (bucket start, last price in the bucket), oldest first; bucket starts strictly rise.
        self._closes: deque[tuple[int, int]] = deque(maxlen=window_seconds // bucket_seconds)
        self._reference: int | None = None

    def __len__(self) -> int:
        return len(self._closes)

    @property
    def last(self) -> int | None:
        return self._closes[-1][1] if self._closes else None

    @property
    def reference(self) -> int | None:
        """The price the change is measured from."""
        return self._reference

    def update(self, ticks: int, at: float) -> None:
        bucket = int(at // self.bucket_seconds) * self.bucket_seconds
        if self._reference is None:
            self._reference = ticks
        if self._closes and bucket <= self._closes[-1][0]:
            # Same minute, or a clock stepping back: the newest minute takes the price.
            self._closes[-1] = (self._closes[-1][0], ticks)
            return
        window_start = bucket - self.window_seconds
        while self._closes and self._closes[0][0] <= window_start:
            self._reference = self._closes.popleft()[1]
        self._closes.append((bucket, ticks))

    def change_24h(self) -> str:
        """The change from the reference to the last price, in percent with two decimals."""
        last, reference = self.last, self._reference
        if last is None or reference is None:
            return "0.00"
        return percent_change(reference, last)


def percent_change(before: int, after: int) -> str:
    """``after`` against ``before`` in percent, two decimals, half to even; never "-0.00"."""
    if before <= 0:
        raise ValueError("the reference price must be positive")
    change = ((Decimal(after) - before) * 100 / before).quantize(PERCENT_QUANTUM, ROUND_HALF_EVEN)
    if change == 0:
        change = abs(change)
    return f"{change:f}"
