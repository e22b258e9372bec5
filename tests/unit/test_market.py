"""Market data: tick arithmetic, the GBM simulator, candles, the 24 h change and the feed."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import statistics
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.market import (
    DEFAULT_MARKETS,
    Candle,
    CandleBuilder,
    DayWindow,
    Market,
    MarketFeed,
    PriceSimulator,
    market_by_symbol,
)
from backend.market.candles import percent_change, timeframe_label
from backend.market.simulator import SECONDS_PER_YEAR

TON = market_by_symbol("TON-USDT")
ETH = market_by_symbol("ETH-USDT")
BNB = market_by_symbol("BNB-USDT")
# A minute boundary (1_700_000_040 = 28_333_334 * 60), so offsets below read as seconds past it.
T0 = 1_700_000_040
DAY = 86_400


class RecordingPublisher:
    """Keeps every publish call; answers with a rising sequence number like a hub would."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self._grown = asyncio.Event()

    async def publish(
        self,
        topic: str,
        kind: str,
        data: dict[str, Any],
        *,
        state: dict[str, Any] | None = None,
    ) -> int:
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("hub unavailable")
        self.calls.append({"topic": topic, "kind": kind, "data": data, "state": state})
        self._grown.set()
        return len(self.calls)

    async def wait_for(self, count: int) -> None:
        while len(self.calls) < count:
            self._grown.clear()
            await self._grown.wait()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- markets -----------------------------------------------------------------------------------


def test_default_markets_and_lookup() -> None:
    assert [m.symbol for m in DEFAULT_MARKETS] == ["TON-USDT", "ETH-USDT", "BNB-USDT"]
    assert (TON.base, TON.quote, TON.decimals) == ("TON", "USDT", 4)
    assert TON.tick_size == Decimal("0.0001")
    assert (ETH.tick_size, ETH.decimals, BNB.tick_size) == (Decimal("0.01"), 2, Decimal("0.01"))
    with pytest.raises(KeyError, match=r"unknown market 'DOGE-USDT'.*TON-USDT, ETH-USDT, BNB-USDT"):
        market_by_symbol("DOGE-USDT")


def test_ticks_and_price_strings() -> None:
    assert TON.to_ticks(Decimal("5.2031")) == 52031
    assert TON.price_str(52031) == "5.2031"
    assert TON.price_str(1) == "0.0001"
    assert TON.price_str(52000) == "5.2000"
    assert ETH.to_ticks(Decimal("3500.12")) == 350012
    assert ETH.price_str(350012) == "3500.12"
    assert ETH.price_str(350000) == "3500.00"
    assert ETH.to_ticks(Decimal("3500.1")) == 350010
    assert TON.start_ticks == 52000 and ETH.start_ticks == 350000 and BNB.start_ticks == 60000
    for market in DEFAULT_MARKETS:
        for ticks in (1, 7, 123_456_789):
            assert market.to_ticks(Decimal(market.price_str(ticks))) == ticks
    with pytest.raises(ValueError, match="not a multiple of the tick size"):
        ETH.to_ticks(Decimal("3500.125"))
    with pytest.raises(ValueError, match="not a multiple"):
        Market("X-USDT", "X", "USDT", Decimal("0.01"), Decimal("1.001"), 0.5)


# --- simulator ---------------------------------------------------------------------------------


def path(simulator: PriceSimulator, steps: int, dt: float) -> list[dict[str, int]]:
    return [simulator.step(dt) for _ in range(steps)]


def test_same_seed_same_path() -> None:
    first = path(PriceSimulator(seed=42), 1000, 0.5)
    assert first == path(PriceSimulator(seed=42), 1000, 0.5)
    assert first != path(PriceSimulator(seed=43), 1000, 0.5)
    # A market's path depends on the seed alone, not on the markets beside it.
    alone = path(PriceSimulator([ETH], seed=42), 1000, 0.5)
    assert [p["ETH-USDT"] for p in first] == [p["ETH-USDT"] for p in alone]


def test_prices_start_at_start_price_and_a_zero_step_keeps_them() -> None:
    simulator = PriceSimulator(seed=1)
    start = {m.symbol: m.start_ticks for m in DEFAULT_MARKETS}
    assert simulator.prices == start
    assert simulator.step(0) == start
    with pytest.raises(ValueError, match="non-negative"):
        simulator.step(-1)
    with pytest.raises(ValueError, match="non-negative"):
        simulator.step(math.nan)


def test_prices_are_whole_ticks_and_positive_over_100k_steps() -> None:
    simulator = PriceSimulator(seed=7)
    lowest = {m.symbol: m.start_ticks for m in DEFAULT_MARKETS}
    for _ in range(100_000):
        for symbol, ticks in simulator.step(0.5).items():
            assert type(ticks) is int
            lowest[symbol] = min(lowest[symbol], ticks)
    assert all(ticks >= 1 for ticks in lowest.values())
    # Half a day of 0.5 s steps moves the prices but does not wreck them.
    assert 0.5 < lowest["TON-USDT"] / TON.start_ticks <= 1


def test_a_collapsing_market_floors_at_one_tick() -> None:
    wild = Market("WILD-USDT", "WILD", "USDT", Decimal("0.01"), Decimal("0.05"), 40.0)
    simulator = PriceSimulator([wild], seed=3)
    seen = [simulator.step(DAY)["WILD-USDT"] for _ in range(2000)]
    assert min(seen) == 1
    assert all(type(t) is int and t >= 1 for t in seen)
    assert max(seen[seen.index(1) :]) > 1  # it can move off the floor again


@pytest.mark.parametrize("drift", [0.0, 0.3])
def test_log_returns_match_gbm(drift: float) -> None:
    # A huge start price in ticks, so rounding to the tick does not blur the returns.
    big = Market("BIG-USDT", "BIG", "USDT", Decimal("0.01"), Decimal("1000000000.00"), 0.7)
    simulator = PriceSimulator([big], seed=2024, drift=drift)
    steps = 10_000
    prices = [big.start_ticks] + [p["BIG-USDT"] for p in path(simulator, steps, DAY)]
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    dt = DAY / SECONDS_PER_YEAR
    sigma_dt = 0.7 * math.sqrt(dt)
    assert statistics.stdev(returns) == pytest.approx(sigma_dt, rel=0.10)
    # The mean is (mu - sigma^2/2) dt; allow four standard errors.
    assert abs(statistics.fmean(returns) - (drift - 0.7**2 / 2) * dt) < 4 * sigma_dt / steps**0.5


# --- candles -----------------------------------------------------------------------------------


def test_timeframe_labels() -> None:
    labels = [timeframe_label(s) for s in (60, 300, 3600, 86_400, 90)]
    assert labels == ["1m", "5m", "1h", "1d", "90s"]


def ohlct(candle: Candle) -> tuple[int, int, int, int, int]:
    return (candle.open, candle.high, candle.low, candle.close, candle.trades)


def test_candles_roll_over_at_minute_boundaries() -> None:
    builder = CandleBuilder()
    current, closed = builder.update("TON-USDT", 100, T0 + 1)
    assert closed is None
    assert (current.open_time, *ohlct(current)) == (T0, 100, 100, 100, 100, 1)
    builder.update("TON-USDT", 105, T0 + 30)
    builder.update("ETH-USDT", 9, T0 + 31)  # another market has its own candle
    current, closed = builder.update("TON-USDT", 95, T0 + 59.999)
    assert closed is None
    assert ohlct(current) == (100, 105, 95, 95, 3)

    current, closed = builder.update("TON-USDT", 98, T0 + 60)
    assert closed is not None
    assert (closed.market, closed.timeframe, closed.open_time) == ("TON-USDT", "1m", T0)
    assert ohlct(closed) == (100, 105, 95, 95, 3)
    assert (current.open_time, *ohlct(current)) == (T0 + 60, 98, 98, 98, 98, 1)

    # A quiet stretch leaves no empty candles; the next update opens its own minute.
    current, closed = builder.update("TON-USDT", 97, T0 + 300.5)
    assert closed is not None and closed.open_time == T0 + 60
    assert current.open_time == T0 + 300
    # A clock stepping back folds into the current candle instead of reopening an old one.
    current, closed = builder.update("TON-USDT", 120, T0 + 10)
    assert closed is None
    assert (current.open_time, *ohlct(current)) == (T0 + 300, 97, 120, 97, 120, 2)
    eth = builder.current("ETH-USDT")
    assert eth is not None and (eth.open_time, eth.close, eth.trades) == (T0, 9, 1)


@given(
    st.lists(
        st.tuples(st.integers(1, 10**12), st.floats(0, 150, allow_nan=False)),
        min_size=1,
        max_size=200,
    )
)
def test_candles_bound_their_prices(updates: list[tuple[int, float]]) -> None:
    builder = CandleBuilder()
    at = float(T0)
    candles = []
    expected: dict[int, list[int]] = {}
    for ticks, gap in updates:
        at += gap
        current, closed = builder.update("TON-USDT", ticks, at)
        if closed is not None:
            candles.append(closed)
        expected.setdefault(int(at // 60) * 60, []).append(ticks)
    candles.append(current)
    for candle in candles:
        assert candle.low <= candle.open <= candle.high
        assert candle.low <= candle.close <= candle.high
        assert candle.open_time % 60 == 0
        prices = expected[candle.open_time]
        assert ohlct(candle) == (prices[0], max(prices), min(prices), prices[-1], len(prices))
    assert [c.open_time for c in candles] == sorted(expected)


# --- 24 h change -------------------------------------------------------------------------------


def test_percent_change() -> None:
    assert percent_change(100, 110) == "10.00"
    assert percent_change(3, 2) == "-33.33"
    assert percent_change(3, 4) == "33.33"
    assert percent_change(1_000_000, 999_999) == "0.00"  # not "-0.00"
    assert percent_change(520_000, 520_000) == "0.00"


def test_day_window_measures_from_the_first_price_until_a_day_has_passed() -> None:
    window = DayWindow()
    assert window.change_24h() == "0.00"
    window.update(100, T0)
    assert window.change_24h() == "0.00"
    window.update(110, T0 + 30)
    assert (window.reference, window.change_24h()) == (100, "10.00")
    window.update(90, T0 + 3600)
    assert window.change_24h() == "-10.00"
    window.update(95, T0 + DAY - 1)
    assert (window.reference, window.change_24h()) == (100, "-5.00")
    # A day after the first minute, its close (110) slides out and becomes the reference.
    window.update(121, T0 + DAY + 1)
    assert (window.reference, window.change_24h()) == (110, "10.00")


def test_day_window_keeps_one_close_per_minute_for_a_day() -> None:
    window = DayWindow()
    for minute in range(3 * 1440):
        window.update(1000 + minute, T0 + 60 * minute + 5)
        window.update(1000 + minute, T0 + 60 * minute + 50)  # same minute: replaces, not appends
        assert len(window) == min(minute + 1, 1440)
    minute = 3 * 1440 - 1
    assert window.reference == 1000 + minute - 1440
    assert window.change_24h() == percent_change(1000 + minute - 1440, 1000 + minute)


# --- feed --------------------------------------------------------------------------------------

PRICE_FORMAT = {
    "TON-USDT": re.compile(r"^\d+\.\d{4}$"),
    "ETH-USDT": re.compile(r"^\d+\.\d{2}$"),
    "BNB-USDT": re.compile(r"^\d+\.\d{2}$"),
}


def topics_and_kinds(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["topic"], c["kind"]) for c in calls]


async def test_feed_tick_publishes_prices_and_candles() -> None:
    publisher, clock = RecordingPublisher(), Clock(T0 + 0.25)
    feed = MarketFeed(publisher, seed=11, clock=clock)

    await feed.tick()
    assert topics_and_kinds(publisher.calls) == [
        ("prices", "delta"),
        ("candles:TON-USDT:1m", "delta"),
        ("candles:ETH-USDT:1m", "delta"),
        ("candles:BNB-USDT:1m", "delta"),
    ]
    prices = publisher.calls[0]
    ts = int((T0 + 0.25) * 1000)
    assert prices["data"] == {
        "markets": {
            "TON-USDT": {"price": "5.2000", "change_24h": "0.00", "ts": ts},
            "ETH-USDT": {"price": "3500.00", "change_24h": "0.00", "ts": ts},
            "BNB-USDT": {"price": "600.00", "change_24h": "0.00", "ts": ts},
        }
    }
    assert prices["state"] == prices["data"] and prices["state"] is not prices["data"]
    ton = publisher.calls[1]
    assert ton["data"] == {
        "candle": {
            "market": "TON-USDT",
            "timeframe": "1m",
            "open_time": T0,
            "open": "5.2000",
            "high": "5.2000",
            "low": "5.2000",
            "close": "5.2000",
            "trades": 1,
        }
    }
    assert ton["state"] == ton["data"]["candle"]

    publisher.calls.clear()
    clock.now = T0 + 30
    await feed.tick()
    quotes = publisher.calls[0]["data"]["markets"]
    assert quotes != prices["data"]["markets"]  # half a minute of simulated trading moved prices
    for call in publisher.calls[1:]:
        candle = call["data"]["candle"]
        quote = quotes[candle["market"]]
        assert candle["close"] == quote["price"] and candle["trades"] == 2
        for field in ("open", "high", "low", "close"):
            assert PRICE_FORMAT[candle["market"]].match(candle[field]), candle
    for symbol, quote in quotes.items():
        assert PRICE_FORMAT[symbol].match(quote["price"]), quote
        assert re.match(r"^-?\d+\.\d{2}$", quote["change_24h"]), quote
        start = market_by_symbol(symbol).start_ticks
        now = market_by_symbol(symbol).to_ticks(Decimal(quote["price"]))
        assert quote["change_24h"] == percent_change(start, now)
        assert quote["ts"] == (T0 + 30) * 1000

    publisher.calls.clear()
    clock.now = T0 + 60.5
    await feed.tick()
    assert topics_and_kinds(publisher.calls) == [
        ("prices", "delta"),
        ("candles:TON-USDT:1m", "event"),
        ("candles:TON-USDT:1m", "delta"),
        ("candles:ETH-USDT:1m", "event"),
        ("candles:ETH-USDT:1m", "delta"),
        ("candles:BNB-USDT:1m", "event"),
        ("candles:BNB-USDT:1m", "delta"),
    ]
    closed, opened = publisher.calls[1], publisher.calls[2]
    assert closed["state"] is None
    assert closed["data"]["closed"]["open_time"] == T0
    assert closed["data"]["closed"]["open"] == "5.2000"
    assert closed["data"]["closed"]["close"] == quotes["TON-USDT"]["price"]
    assert closed["data"]["closed"]["trades"] == 2
    new_price = publisher.calls[0]["data"]["markets"]["TON-USDT"]["price"]
    assert opened["data"]["candle"]["open_time"] == T0 + 60
    assert opened["data"]["candle"]["open"] == opened["data"]["candle"]["close"] == new_price


async def test_feed_is_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        publisher, clock = RecordingPublisher(), Clock(T0)
        feed = MarketFeed(publisher, seed=5, clock=clock)
        for step in range(200):
            clock.now = T0 + step * 0.5
            await feed.tick()
        runs.append(publisher.calls)
    assert runs[0] == runs[1]


async def test_feed_run_survives_publish_errors_and_stops_when_cancelled() -> None:
    publisher = RecordingPublisher(fail_first=2)
    feed = MarketFeed(publisher, interval=0.005, seed=1)
    task = asyncio.create_task(feed.run())
    async with asyncio.timeout(5):
        await publisher.wait_for(8)  # two full ticks after the failures
    assert publisher.fail_first == 0  # both failures happened, and the feed went on
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
