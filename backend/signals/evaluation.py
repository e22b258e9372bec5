"""The verdict on a model: its out-of-sample scores beside the naive baselines, edge or none.

Works with any model that, given the features up to bar ``t``, gives the probability that the
close ``horizon`` bars later is higher: the caller walks the folds of ``walk_forward``, fits on
each fold's ``train`` and hands back the probabilities for its ``test``. Everything here is then
computed from those probabilities and the close series alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backend.signals.backtest import StrategyResult, deflated_sharpe, long_flat, non_overlapping
from backend.signals.baselines import Baseline, default_baselines
from backend.signals.metrics import (
    DieboldMariano,
    brier_losses,
    diebold_mariano,
    log_loss,
    reliability,
    var_backtest,
    wilson_interval,
)
from backend.signals.report import Report, Row
from backend.signals.walkforward import FloatArray, Fold, as_prices, forward_returns, sample_count

# The conventional one-sided 5% level; the hit-rate condition already guards against a lucky DM.
SIGNIFICANCE = 0.05
# Below this many test points the hit rate's 95% interval is about ±10 points wide: any verdict
# there would be noise, so the rule declines to find an edge.
MIN_OBSERVATIONS = 100
# Binance's base spot fee, 0.1% per side; pass the exchange's own when it differs.
DEFAULT_FEE_BPS = 10.0
# A long/flat trader goes long when "up" is more likely than not.
DEFAULT_THRESHOLD = 0.5

EDGE_RULE = (
    f"edge = at least {MIN_OBSERVATIONS} out-of-sample points, AND a lower Brier score than the "
    f"best baseline (the baseline with the lowest Brier) with a one-sided Diebold-Mariano "
    f"p < {SIGNIFICANCE} (HLN correction, HAC variance over h - 1 lags), AND the lower bound "
    f"of the model's 95% Wilson interval for its hit rate above the best baseline's hit rate"
)


@dataclass(frozen=True, slots=True, eq=False)
class _Forecast:
    """One forecaster's probabilities over the concatenated test points, before scoring."""

    name: str
    p: FloatArray
    always_long: bool

    @property
    def calls_up(self) -> NDArray[np.bool_]:
        """Its direction at each point: buy-and-hold calls "up" even when its ``p`` is below 1/2."""
        return np.ones(len(self.p), dtype=bool) if self.always_long else self.p > 0.5


def evaluate(
    close: FloatArray,
    folds: Sequence[Fold],
    probabilities: Sequence[FloatArray],
    *,
    horizon: int,
    bars_per_year: float,
    fee_bps: float = DEFAULT_FEE_BPS,
    threshold: float = DEFAULT_THRESHOLD,
    trials: int = 1,
    sharpe_variance: float | None = None,
    baselines: Sequence[Baseline] | None = None,
    var_forecasts: FloatArray | None = None,
    var_level: float = 0.95,
    model_name: str = "model",
) -> Report:
    """Score the model's out-of-sample ``probabilities`` (one array per fold, aligned with that
    fold's ``test``) and every baseline on the same points, and give the verdict.

    The edge rule: at least ``MIN_OBSERVATIONS`` test points, AND the model's Brier score beats
    the best baseline's (lowest Brier) with a one-sided Diebold-Mariano p below ``SIGNIFICANCE``,
    AND the lower bound of the model's 95% Wilson interval for its hit rate lies above the best
    baseline's hit rate. The first two say the probabilities are better, the last that the
    direction is better too: a better-calibrated copy of a baseline's calls is not an edge to a
    trader. The strategy figures are reported but take no part in the verdict, since fees,
    threshold and sample period move them more than skill does.

    ``trials`` is how many model variants were tried before this one; the deflated Sharpe of
    every row counts those and the baselines as tries. ``sharpe_variance`` is the variance of
    the tried variants' per-period Sharpes, estimated from the rows when not given.
    ``var_forecasts``, when given, are VaR forecasts (positive fractions) for the same test
    points, backtested against their ``horizon``-bar returns.
    """
    prices = as_prices(close)
    samples = sample_count(len(prices), horizon)
    if not folds or len(folds) != len(probabilities):
        raise ValueError("need one probability array per fold, and at least one fold")
    for fold, p in zip(folds, probabilities, strict=True):
        if np.shape(p) != np.shape(fold.test):
            raise ValueError("each fold's probabilities must align with its test indices")
    index = np.concatenate([fold.test for fold in folds]).astype(np.int64)
    if not len(index) or np.any(np.diff(index) <= 0) or index[0] < 0 or index[-1] >= samples:
        raise ValueError("test indices must ascend across folds and have a known label")
    chosen = tuple(baselines) if baselines is not None else default_baselines()
    if not chosen:
        raise ValueError("at least one baseline is needed to judge against")

    forecasts = [_Forecast(model_name, _concat(probabilities), always_long=False)]
    for baseline in chosen:
        p = _concat([baseline.predict(prices, f.test, f.train, horizon) for f in folds])
        forecasts.append(_Forecast(baseline.name, p, baseline.always_long))
    returns = forward_returns(prices, horizon)[index]
    up = (returns > 0).astype(np.float64)

    losses = [brier_losses(f.p, up) for f in forecasts]
    briers = [float(np.mean(loss)) for loss in losses]
    best = 1 + int(np.argmin(briers[1:]))
    steps = non_overlapping(index, horizon)
    strategies = [
        long_flat(
            np.ones(len(steps)) if f.always_long else (f.p[steps] > threshold).astype(np.float64),
            returns[steps],
            fee_bps=fee_bps,
            periods_per_year=bars_per_year / horizon,
        )
        for f in forecasts
    ]
    tries = trials + len(chosen)
    variance = sharpe_variance if sharpe_variance is not None else _spread(strategies)

    rows = []
    for k, f in enumerate(forecasts):
        hit_count = int(np.sum(f.calls_up == (up > 0)))
        s = strategies[k]
        rows.append(
            Row(
                name=f.name,
                observations=len(up),
                hit_rate=hit_count / len(up),
                hit_interval=wilson_interval(hit_count, len(up)),
                brier=briers[k],
                log_loss=log_loss(f.p, up),
                reliability=tuple(reliability(f.p, up)),
                dm=None if k == best else diebold_mariano(losses[k], losses[best], horizon=horizon),
                strategy=s,
                deflated_sharpe=deflated_sharpe(
                    s.sharpe_per_period,
                    trials=tries,
                    sharpe_variance=variance,
                    observations=s.periods,
                    skewness=s.skewness,
                    kurtosis=s.kurtosis,
                ),
            )
        )
    edge, reason = verdict(rows[0], rows[best])
    return Report(
        horizon=horizon,
        observations=len(index),
        folds=len(folds),
        up_rate=float(np.mean(up)),
        threshold=threshold,
        fee_bps=fee_bps,
        trials=trials,
        model=rows[0],
        baselines=tuple(rows[1:]),
        best_baseline=rows[best].name,
        edge=edge,
        reason=reason,
        rule=EDGE_RULE,
        var=None
        if var_forecasts is None
        else var_backtest(np.asarray(var_forecasts, dtype=np.float64), returns, level=var_level),
    )


def verdict(model: Row, best: Row) -> tuple[bool, str]:
    """The edge rule on the model's row and the best baseline's, with the reason in words."""
    n = model.observations
    dm = model.dm if model.dm is not None else DieboldMariano(math.nan, math.nan, math.nan, n)
    low, high = model.hit_interval
    failures = []
    if n < MIN_OBSERVATIONS:
        failures.append(f"only {n} out-of-sample points, fewer than the {MIN_OBSERVATIONS} needed")
    if not (model.brier < best.brier and dm.p_value < SIGNIFICANCE):
        failures.append(
            f"Brier {model.brier:.4f} is not significantly below {best.name}'s {best.brier:.4f} "
            f"(one-sided DM {_p(dm.p_value)}, needs p < {SIGNIFICANCE})"
        )
    if not low > best.hit_rate:
        failures.append(
            f"hit rate {model.hit_rate:.1%} (95% CI {low:.1%} to {high:.1%}) is not clearly above "
            f"{best.name}'s {best.hit_rate:.1%}"
        )
    if failures:
        return False, "no edge found: " + "; ".join(failures) + "."
    return True, (
        f"edge found: hit rate {model.hit_rate:.1%} (95% CI {low:.1%} to {high:.1%}) above "
        f"{best.name}'s {best.hit_rate:.1%}; Brier {model.brier:.4f} vs {best.brier:.4f}, "
        f"one-sided DM {_p(dm.p_value)} over {n} out-of-sample points."
    )


def _concat(arrays: Sequence[FloatArray]) -> FloatArray:
    return np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])


def _spread(strategies: Sequence[StrategyResult]) -> float:
    """The variance of the rows' per-period Sharpes: the tries seen, when no better one is given."""
    sharpes = [s.sharpe_per_period for s in strategies if math.isfinite(s.sharpe_per_period)]
    return float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "p n/a"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"
