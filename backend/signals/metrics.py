"""Scores of probability forecasts of "up", and the tests that say whether a difference is real.

Every score takes the predicted probabilities ``p`` and the 0/1 outcomes ``y`` of the same points.
A direction is read off a probability as "up" when ``p > 0.5``, so a forecast of exactly one half
counts as a call of "down": it claims no edge, and a claim of none should not score a hit by luck.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backend.signals.distributions import chi2_1_sf, student_t_cdf
from backend.signals.walkforward import FloatArray

# The two-sided 95% point of the standard normal.
Z_95 = 1.959963984540054
# Log loss clips probabilities this far from 0 and 1: one confident miss then costs ln(1e6) ~ 14,
# a heavy penalty that still leaves the average readable instead of infinite.
LOG_LOSS_CLIP = 1e-6
# Ten equal-width bins is the usual reliability diagram; finer bins hold too few points per fold.
RELIABILITY_BINS = 10


def _pair(p: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    probabilities = np.asarray(p, dtype=np.float64)
    outcomes = np.asarray(y, dtype=np.float64)
    if probabilities.shape != outcomes.shape or probabilities.ndim != 1:
        raise ValueError("probabilities and outcomes must be one-dimensional and of equal length")
    if np.any((probabilities < 0) | (probabilities > 1)) or np.any(np.isnan(probabilities)):
        raise ValueError("probabilities must lie in [0, 1]")
    return probabilities, outcomes


def hits(p: FloatArray, y: FloatArray) -> int:
    """How many points the forecast called in the right direction."""
    probabilities, outcomes = _pair(p, y)
    return int(np.sum((probabilities > 0.5) == (outcomes > 0.5)))


def hit_rate(p: FloatArray, y: FloatArray) -> float:
    probabilities, _ = _pair(p, y)
    return hits(p, y) / len(probabilities) if len(probabilities) else math.nan


def wilson_interval(successes: int, trials: int, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion.

    Unlike the normal-approximation interval it stays inside [0, 1] and keeps its coverage near
    0 and 1 and for small samples, where a hit rate over a short test period often sits.
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (rate + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def brier_losses(p: FloatArray, y: FloatArray) -> FloatArray:
    """The squared error of each point: the loss series the Diebold-Mariano test compares."""
    probabilities, outcomes = _pair(p, y)
    losses: FloatArray = (probabilities - outcomes) ** 2
    return losses


def brier_score(p: FloatArray, y: FloatArray) -> float:
    losses = brier_losses(p, y)
    return float(np.mean(losses)) if len(losses) else math.nan


def log_loss(p: FloatArray, y: FloatArray, *, clip: float = LOG_LOSS_CLIP) -> float:
    probabilities, outcomes = _pair(p, y)
    if not len(probabilities):
        return math.nan
    clipped = np.clip(probabilities, clip, 1.0 - clip)
    per_point = outcomes * np.log(clipped) + (1.0 - outcomes) * np.log1p(-clipped)
    return float(-np.mean(per_point))


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One bar of a reliability diagram: a calibrated forecast has ``observed ~ mean_predicted``."""

    low: float
    high: float
    mean_predicted: float
    observed: float
    count: int


def reliability(
    p: FloatArray, y: FloatArray, *, bins: int = RELIABILITY_BINS
) -> list[ReliabilityBin]:
    """The non-empty bins of equal width in predicted probability; the last bin includes 1.0."""
    probabilities, outcomes = _pair(p, y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1], right=False), 0, bins - 1)
    result = []
    for b in range(bins):
        mask = which == b
        count = int(np.sum(mask))
        if count:
            result.append(
                ReliabilityBin(
                    low=float(edges[b]),
                    high=float(edges[b + 1]),
                    mean_predicted=float(np.mean(probabilities[mask])),
                    observed=float(np.mean(outcomes[mask])),
                    count=count,
                )
            )
    return result


def long_run_variance(x: FloatArray, lags: int, *, bartlett: bool = False) -> float:
    """The variance of ``x``'s mean times n, counting autocovariances up to ``lags``.

    Forecasts ``h`` bars ahead made every bar share ``h - 1`` bars of outcome, so their losses are
    autocorrelated up to lag ``h - 1`` and the plain variance would understate the uncertainty.
    Unweighted (Diebold & Mariano's own estimator) the sum is right for that dependence but may
    come out negative; with ``bartlett`` (Newey & West 1987) it stays positive but, at ``h - 1``
    lags, understates the variance and rejects equal accuracy about 9% of the time at 5%.
    """
    series = np.asarray(x, dtype=np.float64)
    n = len(series)
    centred = series - np.mean(series)
    variance = float(np.dot(centred, centred)) / n
    for k in range(1, min(lags, n - 1) + 1):
        weight = 1.0 - k / (lags + 1.0) if bartlett else 1.0
        variance += 2.0 * weight * float(np.dot(centred[k:], centred[:-k])) / n
    return variance


@dataclass(frozen=True, slots=True)
class DieboldMariano:
    """The test of equal predictive accuracy; ``p_value`` is one-sided, for "model is better"."""

    statistic: float
    p_value: float
    mean_difference: float  # mean of model loss minus baseline loss: negative favours the model
    observations: int


def diebold_mariano(
    model_losses: FloatArray, baseline_losses: FloatArray, *, horizon: int = 1
) -> DieboldMariano:
    """Diebold & Mariano (1995) with Harvey, Leybourne & Newbold's (1997) small-sample correction.

    The statistic is scaled by HLN's factor and read against Student's t with n - 1 degrees of
    freedom. The long-run variance of the loss difference counts ``horizon - 1`` lags unweighted,
    the estimator HLN's correction was derived for, and falls back to Newey-West (Bartlett)
    weights in the rare sample where the unweighted sum is not positive.
    """
    if horizon < 1:
        raise ValueError("horizon must be at least one bar")
    model = np.asarray(model_losses, dtype=np.float64)
    baseline = np.asarray(baseline_losses, dtype=np.float64)
    if model.shape != baseline.shape or model.ndim != 1:
        raise ValueError("loss series must be one-dimensional and of equal length")
    n = len(model)
    if n < 2:
        return DieboldMariano(math.nan, math.nan, math.nan, n)
    difference = model - baseline
    mean = float(np.mean(difference))
    variance = long_run_variance(difference, horizon - 1)
    if variance <= 0.0:
        variance = long_run_variance(difference, horizon - 1, bartlett=True)
    if variance <= 0.0:
        # Every point differs by the same amount: no noise to test against, the sign decides.
        if mean == 0.0:
            return DieboldMariano(0.0, 0.5, 0.0, n)
        return DieboldMariano(math.copysign(math.inf, mean), 0.0 if mean < 0 else 1.0, mean, n)
    statistic = mean / math.sqrt(variance / n)
    correction = math.sqrt(max(n + 1 - 2 * horizon + horizon * (horizon - 1) / n, 0.0) / n)
    statistic *= correction
    return DieboldMariano(statistic, student_t_cdf(statistic, n - 1), mean, n)


@dataclass(frozen=True, slots=True)
class VarBacktest:
    """Kupiec's proportion-of-failures test of a value-at-risk forecast."""

    breaches: int
    observations: int
    breach_rate: float
    expected_rate: float
    statistic: float
    p_value: float

    @property
    def passes(self) -> bool:
        """The breach rate is consistent with the VaR level at the 5% significance level."""
        return self.p_value >= 0.05


def var_backtest(var: FloatArray, returns: FloatArray, *, level: float = 0.95) -> VarBacktest:
    """Breaches of a VaR forecast and Kupiec's (1995) likelihood-ratio test of their rate.

    ``var`` holds each period's VaR as a positive fraction of value (0.03 = "lose no more than
    3%"); a breach is a realised return below ``-var``. Kupiec's test counts breaches only and
    assumes them independent; clustered breaches (a model slow to react) need Christoffersen's.
    """
    forecasts = np.asarray(var, dtype=np.float64)
    realised = np.asarray(returns, dtype=np.float64)
    if forecasts.shape != realised.shape or forecasts.ndim != 1:
        raise ValueError("VaR forecasts and returns must be one-dimensional and of equal length")
    if not 0 < level < 1:
        raise ValueError("level must lie strictly between 0 and 1")
    n = len(forecasts)
    expected = 1.0 - level
    breaches = int(np.sum(realised < -forecasts))
    if n == 0:
        return VarBacktest(0, 0, math.nan, expected, math.nan, math.nan)
    rate = breaches / n
    statistic = 2.0 * (
        _binomial_log_likelihood(breaches, n, rate)
        - _binomial_log_likelihood(breaches, n, expected)
    )
    statistic = max(statistic, 0.0)
    return VarBacktest(breaches, n, rate, expected, statistic, chi2_1_sf(statistic))


def _binomial_log_likelihood(successes: int, trials: int, p: float) -> float:
    """log(p^x (1-p)^(n-x)), taking 0 log 0 as 0 so that no breach at all is a finite result."""
    total = 0.0
    if successes:
        total += successes * math.log(p)
    if trials - successes:
        total += (trials - successes) * math.log1p(-p)
    return total
