"""Training the default models: the walk-forward evaluation first, then the final fit.

Every out-of-sample number comes from models retrained per fold on that fold's training bars
only (scaler included), predicting the fold's test bars: the direction network against the
naive baselines (``evaluation.evaluate``), the HAR volatility against GARCH(1,1) and the last
day's realised variance (``risk_report.evaluate_risk``), each candlestick pattern's hit rate.
The models that are saved are then fitted once more on every labelled bar.

Pure apart from the clock: no files (the registry saves), no printing (``Tracker`` reports).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from backend.signals import features as F
from backend.signals.candles import Candles
from backend.signals.distributions import normal_quantile
from backend.signals.evaluation import DEFAULT_FEE_BPS, evaluate
from backend.signals.garch import fit_garch, garch_variance
from backend.signals.patterns import PatternRecord, hit_rates, pattern_flags
from backend.signals.predictors.direction import DirectionConfig, DirectionModel
from backend.signals.predictors.volatility import LEVEL, VolatilityModel
from backend.signals.report import Report
from backend.signals.risk_report import RiskReport, evaluate_risk
from backend.signals.walkforward import FloatArray, Fold, IntArray, sample_count, walk_forward

Tracker = Callable[[str, int], None]
"""Told what is happening and how many of ``steps(config)`` steps it completed (often 0)."""

GARCH = "GARCH(1,1)"
TRAILING = "last 24 bars"
# The naive volatility forecast: the last day's realised variance, scaled to the horizon.
TRAILING_BARS = 24
SECONDS_PER_YEAR = 365.25 * 86400


@dataclass(frozen=True, slots=True)
class TrainConfig:
    # In bars: 1h and 4h on the bundled hourly history.
    horizons: tuple[int, ...] = (1, 4)
    # Four folds keep eight retrainings (two models each) within the two-minute budget on two
    # cores while every test block still spans about four months of hourly bars.
    folds: int = 4
    # The first fold trains on 40% of the samples (about nine months of hours), so even the
    # first model has seen a bull and a bear phase; the other 60% are tested.
    min_train: float = 0.4
    # A window's worth: the samples just after a test block share their windows' bars with it.
    embargo: int = F.WINDOW
    fee_bps: float = DEFAULT_FEE_BPS
    # How many variants of the direction model were scored on this history's folds before
    # this one was chosen (the plain CNN, a smaller more regularised one, each with and
    # without the linear skip): the deflated Sharpe counts them all as tries.
    trials: int = 4
    direction: DirectionConfig = field(default_factory=DirectionConfig)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    folds: tuple[Fold, ...]
    direction: dict[int, Report]
    risk: dict[int, RiskReport]
    patterns: dict[int, dict[str, PatternRecord]]
    seconds: float

    def tables(self) -> str:
        parts = []
        for h in sorted(self.direction):
            parts.append(f"== direction, horizon {h} bar(s) ==\n{self.direction[h].table()}")
        for h in sorted(self.risk):
            parts.append(f"== volatility, horizon {h} bar(s) ==\n{self.risk[h].table()}")
        return "\n\n".join(parts)


@dataclass(frozen=True, slots=True, eq=False)
class Trained:
    direction: DirectionModel
    volatility: VolatilityModel
    evaluation: Evaluation
    seconds: float  # the whole run: evaluation and final fits


def steps(config: TrainConfig) -> int:
    """How many steps a ``train`` run reports: two fits per fold, two final fits."""
    return 2 * config.folds + 2


def bars_per_year(candles: Candles) -> float:
    """From the candles' usual spacing (the median gap, so a missing day does not count)."""
    if len(candles) < 2:
        raise ValueError("two candles at least are needed to tell their length")
    return SECONDS_PER_YEAR / float(np.median(np.diff(candles.time)))


def plan(candles: Candles, config: TrainConfig) -> list[Fold]:
    """The walk-forward folds, purged for the longest horizon so one split serves all heads."""
    longest = max(config.horizons)
    n = sample_count(len(candles), longest)
    warmup = max(DirectionModel.warmup, VolatilityModel.warmup)
    min_train = max(int(n * config.min_train), warmup + 200)
    return walk_forward(
        n, folds=config.folds, min_train=min_train, horizon=longest, embargo=config.embargo
    )


def evaluate_models(
    candles: Candles, config: TrainConfig, *, tracker: Tracker | None = None
) -> Evaluation:
    """The walk-forward evaluation of the default models, every fold refitted."""
    started = time.perf_counter()
    say = tracker or (lambda _message, _done: None)
    folds = plan(candles, config)
    close = candles.close
    returns = np.diff(np.log(close))
    probabilities: list[FloatArray] = []
    variances: dict[str, list[FloatArray]] = {"HAR": [], GARCH: [], TRAILING: []}
    var: dict[str, list[FloatArray]] = {"HAR": [], GARCH: [], TRAILING: []}
    z = normal_quantile(LEVEL)
    horizons = np.array(config.horizons, dtype=np.float64)
    for k, fold in enumerate(folds, 1):
        direction = DirectionModel(config.horizons, config.direction)
        direction.fit(candles, fold.train, progress=_prefixed(say, f"fold {k}: "))
        probabilities.append(direction.predict_at(candles, fold.test))
        say(f"fold {k}: direction fitted ({direction.epochs_run} epochs)", 1)
        volatility = VolatilityModel(config.horizons)
        volatility.fit(candles, fold.train)
        sigma = volatility.predict_at(candles, fold.test)
        variances["HAR"].append(sigma**2)
        var["HAR"].append(volatility.value_at_risk(sigma))
        garch = fit_garch(returns, until=int(fold.train.max()) + max(config.horizons))
        g = np.stack([garch_variance(garch, fold.test - 1, h) for h in config.horizons], axis=1)
        variances[GARCH].append(g)
        trailing = _trailing_variance(returns, fold.test) * horizons
        variances[TRAILING].append(trailing)
        for name, v in ((GARCH, g), (TRAILING, trailing)):
            var[name].append(-np.expm1(-z * np.sqrt(v)))
        say(f"fold {k}: volatility and GARCH fitted", 1)
    flags = pattern_flags(candles)
    direction_reports, risk_reports, patterns = {}, {}, {}
    year = bars_per_year(candles)
    for j, h in enumerate(config.horizons):
        har_var = np.concatenate([v[:, j] for v in var["HAR"]])
        direction_reports[h] = evaluate(
            close,
            folds,
            [p[:, j] for p in probabilities],
            horizon=h,
            bars_per_year=year,
            fee_bps=config.fee_bps,
            trials=config.trials,
            var_forecasts=har_var,
            var_level=LEVEL,
            model_name=f"CNN {h}-bar",
        )
        risk_reports[h] = evaluate_risk(
            close,
            folds,
            {n: np.concatenate([v[:, j] for v in variances[n]]) for n in variances},
            {n: np.concatenate([v[:, j] for v in var[n]]) for n in var},
            horizon=h,
            baseline=GARCH,
            level=LEVEL,
        )
        patterns[h] = hit_rates(flags, close, folds, horizon=h)
    return Evaluation(
        tuple(folds),
        direction_reports,
        risk_reports,
        patterns,
        time.perf_counter() - started,
    )


def train(candles: Candles, config: TrainConfig, *, tracker: Tracker | None = None) -> Trained:
    """Evaluate walk-forward, then fit the models to keep on every labelled bar."""
    started = time.perf_counter()
    say = tracker or (lambda _message, _done: None)
    evaluation = evaluate_models(candles, config, tracker=tracker)
    everything = np.arange(0, sample_count(len(candles), max(config.horizons)), dtype=np.int64)
    direction = DirectionModel(config.horizons, config.direction)
    direction.fit(candles, everything, progress=_prefixed(say, "final: "))
    say(f"final: direction fitted ({direction.epochs_run} epochs)", 1)
    volatility = VolatilityModel(config.horizons)
    volatility.fit(candles, everything)
    say("final: volatility fitted", 1)
    return Trained(direction, volatility, evaluation, time.perf_counter() - started)


def _prefixed(say: Tracker, prefix: str) -> Callable[[str], None]:
    return lambda message: say(prefix + message, 0)


def _trailing_variance(returns: FloatArray, at: IntArray) -> FloatArray:
    """The mean squared return of the ``TRAILING_BARS`` bars up to each bar of ``at``, as a
    column to scale by the horizons (``returns[j]`` is the move into bar ``j + 1``)."""
    index = np.asarray(at, dtype=np.int64)[:, None] - 1 - np.arange(TRAILING_BARS)
    if index.min() < 0:
        raise ValueError(f"the trailing baseline needs {TRAILING_BARS} bars of history")
    result: FloatArray = np.mean(returns[index] ** 2, axis=1, keepdims=True)
    return result
