"""What the direction model sees at bar t: a window of the last ``WINDOW`` candles, normalised.

Every value in the window of bar t is computed from candles up to and including t, never later
ones (tests/test_signals_models.py truncates the future and checks that no feature of the past
moves).  Rolling statistics are computed one window at a time (``sliding_window_view``), not
from running sums, so a feature does not even change in its last bit when the series is cut.

Two stages: ``bar_features`` computes per-candle columns once for a whole series; ``windows``
gathers the window of any bar from them and makes the price columns relative to that window's
last close.  The ``Scaler`` is fitted on a training fold's windows only and travels with the
model, so serving normalises exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from backend.signals.candles import Candles
from backend.signals.patterns import LOOKBACK, PATTERNS, pattern_flags
from backend.signals.walkforward import FloatArray, IntArray

Window = NDArray[np.float32]

# A day and a third of hourly bars: the intraday cycle and the shape of the last session, while
# a window of C x 32 keeps the network small enough to retrain per fold in seconds.
WINDOW = 32
# A week of hourly bars: volume has a strong weekly rhythm (quiet weekends), so "high volume"
# means high for this time of the week's neighbourhood, not for the whole history.
VOLUME_WINDOW = 168
# A day of hourly bars: the realised volatility traders quote for intraday risk.
VOLATILITY_WINDOW = 24
# Scaled values are clipped at this many standard deviations: a crash candle still reads as
# extreme, but one outlier cannot dominate a fold's gradient.
CLIP = 8.0

NUMERIC = ("log_return", "high", "low", "close", "volume_z", "realised_vol")
"""Per candle k in the window of bar t: log(close_k / close_k-1); log(high_k / close_t),
log(low_k / close_t), log(close_k / close_t) (relative to the window's last close); the z-score
of log(1 + volume_k) against the ``VOLUME_WINDOW`` candles up to k; and the root mean square
of the ``VOLATILITY_WINDOW`` log returns up to k."""
FEATURES: tuple[str, ...] = NUMERIC + tuple(f"pattern:{name}" for name in PATTERNS)
"""The channels, in order: the registry refuses a model trained on another list."""
# The columns made relative to the window's last close.
_RELATIVE = (1, 2, 3)

WARMUP = max(VOLUME_WINDOW - 1, VOLATILITY_WINDOW, LOOKBACK) + WINDOW - 1
"""The first bar whose whole window is defined: earlier bars are never samples."""
TAIL = WARMUP + 1
"""How many candles, ending at a bar, determine its window: all serving needs of a market."""


def log_returns(close: FloatArray) -> FloatArray:
    """log(close[k] / close[k - 1]); NaN at k = 0, which has no previous close."""
    prices = np.asarray(close, dtype=np.float64)
    result = np.full(len(prices), np.nan)
    result[1:] = np.diff(np.log(prices))
    return result


def trailing(values: FloatArray, length: int, start: int = 0) -> NDArray[np.float64]:
    """(bars - start, length): for each bar from ``start`` on, the ``length`` values up to and
    including it; rows of NaN where fewer than ``length`` values exist."""
    out = np.full((max(len(values) - start, 0), length), np.nan)
    first = max(start, length - 1)
    if len(values) > first:
        out[first - start :] = sliding_window_view(values, length)[first - length + 1 :]
    return out


@dataclass(frozen=True, slots=True, eq=False)
class BarFeatures:
    """Per-candle columns of a series (``values``, bars x channels) and its log closes."""

    values: Window
    log_close: FloatArray

    def windows(self, at: IntArray) -> Window:
        """(len(at), WINDOW, channels): the window ending at each bar of ``at``, unscaled."""
        bars = np.asarray(at, dtype=np.int64)
        if len(bars) and (bars.min() < WARMUP or bars.max() >= len(self.log_close)):
            raise ValueError(f"windows exist for bars {WARMUP} .. {len(self.log_close) - 1}")
        index = bars[:, None] + np.arange(1 - WINDOW, 1)
        out: Window = self.values[index]
        relative = (self.log_close[index] - self.log_close[bars][:, None]).astype(np.float32)
        for column in _RELATIVE:
            out[:, :, column] += relative
        return out


def bar_features(candles: Candles) -> BarFeatures:
    """The per-candle columns of ``FEATURES`` (price columns still relative to their own close)."""
    n = len(candles)
    values = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if n == 0:
        return BarFeatures(values, np.empty(0))
    _numeric(candles, values)
    values[:, len(NUMERIC) :] = pattern_flags(candles)
    return BarFeatures(values, np.log(candles.close))


def _numeric(candles: Candles, values: Window, start: int = 0) -> None:
    """The numeric columns; the rolling ones only from row ``start`` on (serving needs the
    last window's rows, and a week-long rolling statistic per row is the costly part)."""
    returns = log_returns(candles.close)
    values[:, 0] = returns
    values[:, 1] = np.log(candles.high / candles.close)
    values[:, 2] = np.log(candles.low / candles.close)
    # values[:, 3] stays 0: log(close_k / close_k), made relative in ``windows``.
    volume = trailing(np.log1p(candles.volume), VOLUME_WINDOW, start)
    spread = volume.std(axis=1)
    centred = volume[:, -1] - volume.mean(axis=1)
    # A flat week of volume (an idle market's zeros) has no spread to measure against: z = 0.
    z = np.where(spread > 0, centred / np.where(spread > 0, spread, 1.0), 0.0)
    z[np.isnan(spread)] = np.nan
    values[start:, 4] = z
    rms = np.sqrt(np.mean(trailing(returns, VOLATILITY_WINDOW, start) ** 2, axis=1))
    values[start:, 5] = rms


def last_flags(window: Window) -> NDArray[np.int8]:
    """The pattern flags of a window's last candle (unscaled window, as ``last_window``)."""
    flags: NDArray[np.int8] = window[-1, len(NUMERIC) :].astype(np.int8)
    return flags


def windows(candles: Candles, at: IntArray) -> Window:
    """The unscaled windows of bars ``at`` of ``candles``."""
    return bar_features(candles).windows(at)


def last_window(candles: Candles) -> Window:
    """(WINDOW, channels): the window of the last candle, from its last ``TAIL`` candles only.

    Equal to ``windows(candles, [len(candles) - 1])[0]`` but cheaper: the rolling statistics
    and the patterns are computed only for the window's rows."""
    if len(candles) < TAIL:
        raise ValueError(f"{len(candles)} candles; the last one's window needs {TAIL}")
    tail = candles if len(candles) == TAIL else candles[-TAIL:]
    values = np.zeros((TAIL, len(FEATURES)), dtype=np.float32)
    _numeric(tail, values, TAIL - WINDOW)
    recent = WINDOW + LOOKBACK
    values[-WINDOW:, len(NUMERIC) :] = pattern_flags(tail[-recent:])[-WINDOW:]
    window: Window = BarFeatures(values, np.log(tail.close)).windows(np.array([TAIL - 1]))[0]
    return window


@dataclass(frozen=True, slots=True, eq=False)
class Scaler:
    """Per-channel mean and standard deviation of a training fold's windows."""

    mean: FloatArray
    std: FloatArray

    @classmethod
    def fit(cls, bars: BarFeatures, at: IntArray, *, chunk: int = 1024) -> Scaler:
        """Fitted on the windows of the training bars ``at`` only, a chunk at a time.

        Pattern flags keep mean 0 and deviation 1: they are already -1/0/+1, and a rare
        pattern's tiny deviation would blow its flag up to the clip."""
        channels = len(FEATURES)
        total = np.zeros(channels)
        squares = np.zeros(channels)
        count = 0
        index = np.asarray(at, dtype=np.int64)
        for start in range(0, len(index), chunk):
            block = bars.windows(index[start : start + chunk]).astype(np.float64)
            flat = block.reshape(-1, channels)
            total += flat.sum(axis=0)
            squares += (flat * flat).sum(axis=0)
            count += len(flat)
        if count == 0:
            raise ValueError("a scaler needs at least one training window")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        std[std < 1e-12] = 1.0
        mean[len(NUMERIC) :] = 0.0
        std[len(NUMERIC) :] = 1.0
        return cls(mean, std)

    def apply(self, window: Window) -> Window:
        """Scaled and clipped copies of windows (any leading shape, channels last)."""
        mean = self.mean.astype(np.float32)
        std = self.std.astype(np.float32)
        scaled: Window = np.clip((window - mean) / std, -CLIP, CLIP).astype(np.float32)
        return scaled
