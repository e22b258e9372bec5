"""Serving: the signal of each market's last closed candle, every market in one forward pass.

A ``Signal`` carries the model's verdict with it: ``published`` is the direction model's edge
at that horizon from the walk-forward evaluation.  Where it is False the UI shows "no edge
found" with ``reason`` (the numbers), not a direction dressed up as advice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from backend.errors import BadRequest
from backend.signals import registry
from backend.signals.candles import Candles
from backend.signals.features import last_flags, last_window
from backend.signals.patterns import PATTERNS, PatternRecord
from backend.signals.predictors.direction import DirectionModel
from backend.signals.predictors.volatility import VolatilityModel


class NotEnoughHistory(BadRequest):
    """A market has too few candles for its last one's inputs."""

    code = "not_enough_history"


class PatternCall(NamedTuple):
    """A pattern on the scored candle and its out-of-sample record at the signal's horizon."""

    name: str  # TA-Lib's function name, e.g. CDLENGULFING
    signal: int  # +1 bullish, -1 bearish
    hit_rate: float | None  # None: too few occurrences in history ("not enough history")
    occurrences: int  # its count on the evaluation's test bars


@dataclass(frozen=True, slots=True)
class Signal:
    market: str
    time: int  # the scored candle's opening time, unix seconds UTC
    horizon: int  # in bars of ``interval``
    interval: str
    probability_up: float
    direction: str  # "up" when probability_up > 0.5, else "down" (the evaluation's rule)
    volatility: float  # standard deviation of the horizon's log return, a fraction
    var95: float  # the loss exceeded one horizon in twenty, a positive fraction of value
    patterns: tuple[PatternCall, ...]
    model_version: int  # the direction model's registry version
    risk_version: int  # the volatility model's
    published: bool  # the direction model showed an edge at this horizon out of sample
    reason: str  # the verdict in words, with its numbers


class Scorer:
    """The newest direction and volatility models of a registry, loaded and checked once."""

    def __init__(
        self,
        direction: DirectionModel,
        volatility: VolatilityModel,
        direction_entry: registry.Entry,
        risk_entry: registry.Entry,
    ) -> None:
        missing = set(direction.horizons) - set(volatility.horizons)
        if missing:
            raise registry.ModelRefused(f"the volatility model lacks horizons {sorted(missing)}")
        self.direction = direction
        self.volatility = volatility
        self.direction_entry = direction_entry
        self.risk_entry = risk_entry
        self.interval = str(direction_entry.metadata["data"]["interval"])
        self.needed = max(direction.history, volatility.history)
        self._verdicts = {h: direction_entry.verdict(h) for h in direction.horizons}
        stored = direction_entry.metadata.get("extra", {}).get("patterns", {})
        self._records: dict[int, dict[str, PatternRecord]] = {
            h: {
                name: PatternRecord.from_dict(data) for name, data in stored.get(str(h), {}).items()
            }
            for h in direction.horizons
        }

    @classmethod
    def load(cls, root: Path = registry.DEFAULT_ROOT) -> Scorer:
        direction, d_entry = registry.load(root, DirectionModel.kind)
        volatility, v_entry = registry.load(root, VolatilityModel.kind)
        if not isinstance(direction, DirectionModel) or not isinstance(volatility, VolatilityModel):
            raise registry.ModelRefused("the registry holds models of unexpected classes")
        return cls(direction, volatility, d_entry, v_entry)

    @property
    def horizons(self) -> tuple[int, ...]:
        return self.direction.horizons

    def score(
        self, batch: Mapping[str, Candles], *, horizon: int | None = None
    ) -> dict[str, Signal]:
        """The signal of the last candle of each market (which must be closed), at ``horizon``
        bars (the shortest by default); every market in one forward pass per model."""
        h = min(self.horizons) if horizon is None else horizon
        if h not in self.horizons:
            raise BadRequest(f"no model for a {h}-bar horizon; there are {list(self.horizons)}")
        short = {m: len(c) for m, c in batch.items() if len(c) < self.needed}
        if short:
            listed = ", ".join(f"{m} ({n})" for m, n in sorted(short.items()))
            raise NotEnoughHistory(f"{self.needed} candles needed per market; {listed}")
        markets = list(batch)
        if not markets:
            return {}
        tails = [_tail(batch[m], self.needed) for m in markets]
        column = self.horizons.index(h)
        # The raw windows once: the net reads them scaled, the patterns are their last row.
        raw = np.stack([last_window(candles) for candles in tails])
        up = self.direction.predict(self.direction.scale(raw))[:, column]
        sigma_all = self.volatility.predict_last(tails)
        var_all = self.volatility.value_at_risk(sigma_all)
        v_column = self.volatility.horizons.index(h)
        verdict = self._verdicts[h]
        records = self._records[h]
        signals = {}
        for k, market in enumerate(markets):
            p = float(up[k])
            signals[market] = Signal(
                market=market,
                time=int(tails[k].time[-1]),
                horizon=h,
                interval=self.interval,
                probability_up=p,
                direction="up" if p > 0.5 else "down",
                volatility=float(sigma_all[k, v_column]),
                var95=float(var_all[k, v_column]),
                patterns=_patterns(last_flags(raw[k]), records),
                model_version=self.direction_entry.version,
                risk_version=self.risk_entry.version,
                published=verdict.edge,
                reason=verdict.reason,
            )
        return signals


def _tail(candles: Candles, length: int) -> Candles:
    return candles if len(candles) == length else candles[-length:]


def _patterns(
    flags: NDArray[np.int8], records: dict[str, PatternRecord]
) -> tuple[PatternCall, ...]:
    calls = []
    for j in np.flatnonzero(flags):
        name = PATTERNS[int(j)]
        record = records.get(name)
        calls.append(
            PatternCall(
                name=name,
                signal=int(flags[j]),
                hit_rate=None if record is None else record.hit_rate,
                occurrences=0 if record is None else record.count,
            )
        )
    return tuple(calls)
