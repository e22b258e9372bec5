"""Candlestick patterns (TA-Lib's 61 ``CDL*`` functions) and how often each was right.

A pattern's name promises a direction; whether it delivers on this market is an empirical
question, so every pattern carries its own out-of-sample record: of the times it fired on the
evaluation folds' test bars, how often the next horizon moved the way it said.  A pattern that
fired too rarely gets no hit rate at all (``None``): the UI says "not enough history" rather
than show a rate from a handful of cases.

TA-Lib reads each candle's pattern from that candle and the few before it (at most
``LOOKBACK`` bars), never from later ones, so a flag is known when its candle closes.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backend.signals.candles import Candles
from backend.signals.metrics import wilson_interval
from backend.signals.walkforward import FloatArray, Fold

Flags = NDArray[np.int8]

# TA-Lib's stubs cover its functions but not its registry of them (the groups, the abstract
# API); this module is the only one that touches TA-Lib, so it is held as an untyped module here.
_TALIB: Any = importlib.import_module("talib")
_ABSTRACT: Any = importlib.import_module("talib.abstract")

PATTERNS: tuple[str, ...] = tuple(sorted(_TALIB.get_function_groups()["Pattern Recognition"]))
"""TA-Lib's candlestick functions, by name (CDL2CROWS ... CDLXSIDEGAP3METHODS)."""
_FUNCTIONS: tuple[Any, ...] = tuple(getattr(_TALIB, name) for name in PATTERNS)
LOOKBACK: int = max(int(_ABSTRACT.Function(name).lookback) for name in PATTERNS)
"""The longest look-back among them (14 in TA-Lib 0.6: CDLBREAKAWAY, CDLMATHOLD...): a pattern
at bar t depends on bars t - LOOKBACK .. t only, so that many bars before a window suffice."""
# Below this many occurrences a hit rate's 95% Wilson interval is about +-17 points wide: too
# wide to tell a pattern from a coin, so no rate is shown.
MIN_OCCURRENCES = 30


def pattern_flags(candles: Candles) -> Flags:
    """(bars, patterns): +1 where a pattern signals bullish on that candle, -1 bearish, else 0.

    TA-Lib answers +-100 (and +-200 for a confirmed Hikkake, +-80 for some weaker forms); only
    the sign is kept, since the magnitudes mean different things to different patterns."""
    prices = (candles.open, candles.high, candles.low, candles.close)
    flags = np.empty((len(candles), len(PATTERNS)), dtype=np.int8)
    if not len(candles):
        return flags
    for j, function in enumerate(_FUNCTIONS):
        flags[:, j] = np.sign(np.asarray(function(*prices)))
    return flags


@dataclass(frozen=True, slots=True)
class PatternRecord:
    """A pattern's out-of-sample record at one horizon.

    A bullish call is a hit when the close ``horizon`` bars later is higher, a bearish one when
    it is not (the evaluation's convention: unchanged is not up)."""

    name: str
    horizon: int
    count: int
    hits: int
    hit_rate: float | None  # None: fewer than MIN_OCCURRENCES, "not enough history"
    interval: tuple[float, float] | None  # the 95% Wilson interval of the hit rate

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "horizon": self.horizon,
            "count": self.count,
            "hits": self.hits,
            "hit_rate": self.hit_rate,
            "interval": None if self.interval is None else list(self.interval),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatternRecord:
        interval = data["interval"]
        return cls(
            name=str(data["name"]),
            horizon=int(data["horizon"]),
            count=int(data["count"]),
            hits=int(data["hits"]),
            hit_rate=None if data["hit_rate"] is None else float(data["hit_rate"]),
            interval=None if interval is None else (float(interval[0]), float(interval[1])),
        )


def hit_rates(
    flags: Flags,
    close: FloatArray,
    folds: Sequence[Fold],
    *,
    horizon: int,
    min_occurrences: int = MIN_OCCURRENCES,
) -> dict[str, PatternRecord]:
    """Each pattern's record over the folds' test bars only (``flags`` from ``pattern_flags`` on
    the same candles as ``close``): the same out-of-sample points the models are judged on."""
    prices = np.asarray(close, dtype=np.float64)
    if flags.shape != (len(prices), len(PATTERNS)):
        raise ValueError("flags must have one row per close and one column per pattern")
    test = np.concatenate([fold.test for fold in folds]).astype(np.int64)
    if len(test) and test.max() + horizon >= len(prices):
        raise ValueError("a test bar's label lies beyond the closes")
    up = prices[test + horizon] > prices[test]
    calls = flags[test].astype(np.int64)
    fired = calls != 0
    right = (calls > 0) & up[:, None] | (calls < 0) & ~up[:, None]
    counts = fired.sum(axis=0)
    hits = (fired & right).sum(axis=0)
    records = {}
    for j, name in enumerate(PATTERNS):
        n, k = int(counts[j]), int(hits[j])
        enough = n >= min_occurrences
        records[name] = PatternRecord(
            name=name,
            horizon=horizon,
            count=n,
            hits=k,
            hit_rate=k / n if enough else None,
            interval=wilson_interval(k, n) if enough else None,
        )
    return records
