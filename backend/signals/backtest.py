"""A long/flat strategy on the forecasts, after fees, and its Sharpe ratio deflated for the search.

The strategy acts on non-overlapping horizons: it takes a position at a test point, holds it for
the forecast's horizon and only then looks at the next forecast. Compounding every point's
``horizon``-bar return instead would count each bar ``horizon`` times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backend.signals.distributions import normal_cdf, normal_quantile
from backend.signals.walkforward import FloatArray, IntArray

# The Euler-Mascheroni constant, from the expected maximum of N normals (Bailey & López de Prado).
EULER_GAMMA = 0.5772156649015329
# One basis point is a hundredth of a percent.
BASIS_POINT = 1e-4


@dataclass(frozen=True, slots=True, eq=False)
class StrategyResult:
    total_return: float
    max_drawdown: float  # the deepest fall from a running peak, as a positive fraction
    sharpe: float  # annualised; NaN when the returns never vary (never in the market)
    sharpe_per_period: float  # the unit the deflated Sharpe ratio works in
    trades: int  # entries; every one is closed by the end, so each pays the fee twice
    periods: int
    skewness: float
    kurtosis: float  # not excess: a normal's is 3
    equity: FloatArray  # starts at 1.0, so one point longer than the periods
    returns: FloatArray  # per period, net of fees


def non_overlapping(index: IntArray, horizon: int) -> IntArray:
    """Positions in ``index`` (ascending bars) at which a strategy holding ``horizon`` bars acts."""
    chosen: list[int] = []
    free_from = -math.inf
    for k, bar in enumerate(np.asarray(index, dtype=np.int64).tolist()):
        if bar >= free_from:
            chosen.append(k)
            free_from = bar + horizon
    return np.asarray(chosen, dtype=np.int64)


def long_flat(
    positions: FloatArray, returns: FloatArray, *, fee_bps: float, periods_per_year: float
) -> StrategyResult:
    """Hold ``positions[k]`` (0 flat, 1 long) over ``returns[k]``, paying the fee on each change.

    The fee is charged per side on the traded fraction of equity, starting flat and closing the
    last position at the end, so a round trip costs two fees whatever the series' length.
    """
    held = np.asarray(positions, dtype=np.float64)
    period = np.asarray(returns, dtype=np.float64)
    if held.shape != period.shape or held.ndim != 1:
        raise ValueError("positions and returns must be one-dimensional and of equal length")
    if np.any((held < 0) | (held > 1)):
        raise ValueError("a long/flat position lies between 0 and 1")
    if fee_bps < 0:
        raise ValueError("the fee cannot be negative")
    fee = fee_bps * BASIS_POINT
    before = np.concatenate(([0.0], held[:-1]))
    net = (1.0 - fee * np.abs(held - before)) * (1.0 + held * period) - 1.0
    if len(net):
        net[-1] = (1.0 + net[-1]) * (1.0 - fee * held[-1]) - 1.0
    equity = np.concatenate(([1.0], np.cumprod(1.0 + net)))
    drawdown = 1.0 - equity / np.maximum.accumulate(equity)
    per_period = sharpe_ratio(net)
    skewness, kurtosis = moments(net)
    return StrategyResult(
        total_return=float(equity[-1] - 1.0),
        max_drawdown=float(np.max(drawdown)),
        sharpe=per_period * math.sqrt(periods_per_year),
        sharpe_per_period=per_period,
        trades=int(np.sum((held > 0) & (before == 0))),
        periods=len(net),
        skewness=skewness,
        kurtosis=kurtosis,
        equity=equity,
        returns=net,
    )


def sharpe_ratio(returns: FloatArray) -> float:
    """Mean over standard deviation per period, with no risk-free rate (points earn none)."""
    series = np.asarray(returns, dtype=np.float64)
    if len(series) < 2:
        return math.nan
    deviation = float(np.std(series, ddof=1))
    return float(np.mean(series)) / deviation if deviation > 0 else math.nan


def moments(returns: FloatArray) -> tuple[float, float]:
    """Skewness and (non-excess) kurtosis; NaN for a series that never varies."""
    series = np.asarray(returns, dtype=np.float64)
    if len(series) < 2:
        return math.nan, math.nan
    centred = series - np.mean(series)
    variance = float(np.mean(centred**2))
    if variance <= 0:
        return math.nan, math.nan
    skewness = float(np.mean(centred**3)) / variance**1.5
    return skewness, float(np.mean(centred**4)) / variance**2


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """The best per-period Sharpe that ``trials`` skill-less variants would show by luck alone."""
    if trials <= 1 or sharpe_variance <= 0 or math.isnan(sharpe_variance):
        return 0.0
    return math.sqrt(sharpe_variance) * (
        (1.0 - EULER_GAMMA) * normal_quantile(1.0 - 1.0 / trials)
        + EULER_GAMMA * normal_quantile(1.0 - 1.0 / (trials * math.e))
    )


def deflated_sharpe(
    sharpe: float,
    *,
    trials: int,
    sharpe_variance: float,
    observations: int,
    skewness: float,
    kurtosis: float,
) -> float:
    """Bailey & López de Prado's (2014) deflated Sharpe ratio: P(true Sharpe > luck's best).

    ``sharpe`` is per period (not annualised), ``sharpe_variance`` the variance of the per-period
    Sharpes of the ``trials`` variants tried. Picking the best of many backtests inflates its
    Sharpe; the DSR asks whether this one clears the maximum expected from that many tries of
    zero skill, allowing for the sample length and for skewed, fat-tailed returns.
    """
    if trials < 1:
        raise ValueError("at least one variant was tried")
    values = (sharpe, skewness, kurtosis)
    if observations < 2 or any(math.isnan(v) or math.isinf(v) for v in values):
        return math.nan
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if spread <= 0:
        return math.nan
    return normal_cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))
