"""GARCH(1,1), the volatility baseline, from ``arch``: fitted on a training fold, forecast after.

The one module that touches ``arch`` (and through it pandas); everything it returns is numpy.
Returns are scaled to percent for the optimiser, as arch recommends, and variances scaled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from arch import arch_model

from backend.signals.walkforward import FloatArray, IntArray

# arch's optimiser is best conditioned for returns of order 1 to 1000: percent returns.
_PERCENT = 100.0


@dataclass(frozen=True, slots=True)
class GarchFit:
    """sigma2[t+1] = omega + alpha * r[t]^2 + beta * sigma2[t], on log returns as fractions."""

    omega: float
    alpha: float
    beta: float
    converged: bool
    _result: Any  # arch's fit result, for its forecasts

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta


def fit_garch(returns: FloatArray, *, until: int) -> GarchFit:
    """GARCH(1,1) with zero mean and normal errors, fitted on ``returns[:until]`` only.

    Zero mean: an hourly drift is a hundredth of an hourly standard deviation, below what a
    fold can estimate, and estimating it only adds noise to the variance."""
    series = np.asarray(returns, dtype=np.float64)
    if not np.all(np.isfinite(series)):
        raise ValueError("returns must be finite")
    if not 10 <= until <= len(series):
        raise ValueError("fit GARCH on at least 10 returns, within the series")
    model = arch_model(
        series * _PERCENT, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False
    )
    result = model.fit(last_obs=until, disp="off")
    params = result.params
    scale = _PERCENT * _PERCENT
    return GarchFit(
        omega=float(params["omega"]) / scale,
        alpha=float(params["alpha[1]"]),
        beta=float(params["beta[1]"]),
        converged=int(result.convergence_flag) == 0,
        _result=result,
    )


def garch_variance(fit: GarchFit, at: IntArray, horizon: int) -> FloatArray:
    """The forecast variance of the sum of returns ``at + 1 .. at + horizon``, made at each
    position of ``at`` from returns up to and including it with the fitted parameters."""
    index = np.asarray(at, dtype=np.int64)
    if not len(index):
        return np.empty(0)
    start = int(index.min())
    forecast = fit._result.forecast(horizon=horizon, start=start, reindex=False)
    variance = np.asarray(forecast.variance, dtype=np.float64).sum(axis=1)
    result: FloatArray = variance[index - start] / (_PERCENT * _PERCENT)
    return result
