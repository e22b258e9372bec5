"""Risk assessment: the volatility of the next ``h`` bars, its 95% value at risk, a position size.

The forecaster is a HAR-style regression (Corsi 2009): log variance as a linear function of the
log realised variance over the last hour, day and week, plus the last day's close-to-close
variance and the same hours on the past week's days (intraday volatility has a strong daily
rhythm).  The past variances are measured with Parkinson's high-low range estimator, five times
more efficient than one squared return, so the inputs are not as noisy as what they forecast.
The coefficients minimise QLIKE, the loss the forecast is judged on, which is the quasi-likelihood
of a variance: a convex problem (a gamma GLM with log link) solved by Newton's method, with
no bias correction needed and every forecast positive.

The VaR is filtered historical simulation: the horizon returns of the last ``QUANTILE_BARS``
training bars divided by their forecast volatility give standardised returns, and their
empirical 5% quantile, times the forecast volatility, is the VaR.  No normal tails are assumed
for a market that has none, and the recent tail also absorbs the forecast's current bias.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import torch

from backend.signals.candles import Candles
from backend.signals.features import log_returns
from backend.signals.predictors.base import Inputs, Predictor, Progress, Spec, usable
from backend.signals.walkforward import FloatArray, IntArray

# An hour, a day and a week of hourly bars: Corsi's daily/weekly/monthly cascade of traders'
# horizons, moved down one scale to hourly data.
HAR_LAGS = (1, 24, 168)
# Bars per day on hourly candles, and how many past days' same hours form the seasonal term.
DAY = 24
SEASON_DAYS = 7
# (1 basis point)^2 per bar: an hour without a trade has no variance worth a logarithm of -inf;
# this floor is far below any active market's hourly variance (BTC's is ~(0.7%)^2).
VAR_FLOOR = 1e-8
# The VaR level the UI shows: a loss exceeded on about one horizon in twenty.
LEVEL = 0.95
# Six weeks of hours, the standardised returns the VaR quantile is read from (50 below the 5%
# point).  Out of sample on BTC the whole training fold gave 3.2% breaches instead of 5% (an
# older, wilder regime sets its tails), 4000 and 2000 bars 4.4%, 1000 bars 5.1%.
QUANTILE_BARS = 1000
# Parkinson (1980): E[ln(H/L)^2] = 4 ln 2 sigma^2 for a driftless Brownian bar.
_PARKINSON = 1.0 / (4.0 * math.log(2.0))
# Newton's method on QLIKE converges in about ten steps; a tiny ridge keeps the Hessian
# invertible when an input is constant (a market that never moved).
_NEWTON_STEPS = 100
_RIDGE = 1e-9


class VolatilityModel(Predictor):
    """``predict`` gives the standard deviation of the log return over each horizon."""

    kind = "volatility"
    features = (
        *(f"log_range_{lag}" for lag in HAR_LAGS),
        f"log_rv_{DAY}",
        f"log_range_seasonal_{SEASON_DAYS}d",
    )
    window = max(HAR_LAGS)
    warmup = max(HAR_LAGS)  # bar t needs the bars t - 167 .. t, and bar 0 has no return
    history = max(HAR_LAGS) + 1

    def __init__(self, horizons: tuple[int, ...] = (1, 4), level: float = LEVEL) -> None:
        if not horizons or min(horizons) < 1:
            raise ValueError("horizons are positive numbers of bars")
        if not 0.5 < level < 1:
            raise ValueError("the VaR level lies between 0.5 and 1")
        self.horizons = tuple(horizons)
        self.level = level
        self.coefficients: FloatArray | None = None  # (horizons, 1 + features)
        self.quantile: FloatArray | None = None  # (horizons,): the standardised 5% quantile

    def inputs(self, candles: Candles, at: IntArray) -> Inputs:
        index = np.asarray(at, dtype=np.int64)
        if len(index) and (index.min() < self.warmup or index.max() >= len(candles)):
            raise ValueError(f"inputs exist for bars {self.warmup} .. {len(candles) - 1}")
        ranges = np.log(candles.high / candles.low) ** 2 * _PARKINSON
        squares = log_returns(candles.close) ** 2
        back = index[:, None]
        columns = [ranges[back - np.arange(lag)].mean(axis=1) for lag in HAR_LAGS]
        columns.append(squares[back - np.arange(DAY)].mean(axis=1))
        columns.append(ranges[back + 1 - DAY * np.arange(1, SEASON_DAYS + 1)].mean(axis=1))
        result: FloatArray = np.log(np.stack(columns, axis=1) + VAR_FLOOR)
        return result

    def last_inputs(self, candles: Candles) -> Inputs:
        if len(candles) < self.history:
            raise ValueError(f"{len(candles)} candles; the last one's inputs need {self.history}")
        tail = candles if len(candles) == self.history else candles[-self.history :]
        row: FloatArray = self.inputs(tail, np.array([self.history - 1]))[0]
        return row

    def fit(self, candles: Candles, train: IntArray, *, progress: Progress | None = None) -> None:
        index = usable(train, self.warmup)
        if index.max() + max(self.horizons) >= len(candles):
            raise ValueError("a label lies beyond the last candle")
        x = _design(self.inputs(candles, index))
        squares = log_returns(candles.close) ** 2
        log_close = np.log(candles.close)
        coefficients, quantiles = [], []
        for h in self.horizons:
            future = squares[index[:, None] + np.arange(1, h + 1)].mean(axis=1)
            beta = fit_qlike(x, future)
            recent = slice(-QUANTILE_BARS, None)
            sigma = np.sqrt(h * np.exp(x[recent] @ beta))
            moves = log_close[index[recent] + h] - log_close[index[recent]]
            coefficients.append(beta)
            quantiles.append(float(np.quantile(moves / sigma, 1.0 - self.level)))
        self.coefficients = np.array(coefficients)
        self.quantile = np.array(quantiles)
        if progress is not None:
            progress(f"HAR fitted on {len(index)} bars")

    def predict(self, inputs: Inputs) -> FloatArray:
        beta, _ = self._fitted()
        horizons = np.array(self.horizons, dtype=np.float64)
        variance = horizons * np.exp(_design(np.asarray(inputs)) @ beta.T)
        result: FloatArray = np.sqrt(variance)
        return result

    def value_at_risk(self, sigma: FloatArray) -> FloatArray:
        """The loss, as a positive fraction of value, exceeded with probability 1 - level over
        each horizon (columns as ``predict``'s): 1 - exp(q * sigma) for the training quantile q.
        """
        _, quantile = self._fitted()
        var: FloatArray = np.maximum(-np.expm1(quantile * np.asarray(sigma)), 0.0)
        return var

    def spec(self) -> Spec:
        self._fitted()
        return Spec(
            horizons=self.horizons,
            features=self.features,
            window=self.window,
            config={
                "level": self.level,
                "lags": list(HAR_LAGS),
                "season_days": SEASON_DAYS,
                "floor": VAR_FLOOR,
                "loss": "qlike",
            },
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        beta, quantile = self._fitted()
        return {
            "coefficients": torch.from_numpy(beta.copy()),
            "quantile": torch.from_numpy(quantile.copy()),
        }

    @classmethod
    def rebuild(cls, spec: Spec, tensors: dict[str, torch.Tensor]) -> Self:
        if list(spec.config.get("lags", [])) != list(HAR_LAGS):
            raise ValueError("the model was fitted on other HAR lags")
        model = cls(tuple(spec.horizons), float(spec.config["level"]))
        beta = tensors["coefficients"].double().numpy()
        heads = len(model.horizons)
        if beta.shape != (heads, 1 + len(cls.features)):
            raise ValueError(f"coefficients of shape {tuple(beta.shape)} do not fit the spec")
        model.coefficients = beta
        model.quantile = tensors["quantile"].double().numpy().reshape(heads)
        return model

    def _fitted(self) -> tuple[FloatArray, FloatArray]:
        if self.coefficients is None or self.quantile is None:
            raise ValueError("the model is not fitted")
        return self.coefficients, self.quantile


def _design(inputs: FloatArray) -> FloatArray:
    rows = np.atleast_2d(inputs)
    result: FloatArray = np.hstack([np.ones((len(rows), 1)), rows])
    return result


def fit_qlike(x: FloatArray, realised: FloatArray) -> FloatArray:
    """beta minimising mean(RV exp(-x beta) + x beta), QLIKE up to terms free of beta.

    Newton's method with a backtracking line search; the loss is convex in beta, so the start
    (a constant at the mean variance) only changes how many steps it takes."""
    y = np.asarray(realised, dtype=np.float64)
    rows, k = x.shape
    beta = np.zeros(k)
    beta[0] = math.log(float(np.mean(y)) + VAR_FLOOR)

    def loss(b: FloatArray) -> float:
        eta = x @ b
        return float(np.mean(y * np.exp(-eta) + eta))

    current = loss(beta)
    for _ in range(_NEWTON_STEPS):
        weight = y * np.exp(-(x @ beta))
        gradient = x.T @ (1.0 - weight) / rows
        hessian = (x.T * weight) @ x / rows + _RIDGE * np.eye(k)
        step = np.linalg.solve(hessian, gradient)
        decrease = float(gradient @ step)
        if decrease < 1e-12:
            break
        scale = 1.0
        while scale > 1e-6:
            trial = loss(beta - scale * step)
            if trial <= current - 1e-4 * scale * decrease:
                break
            scale /= 2.0
        beta = beta - scale * step
        current = loss(beta)
    return beta


def position_size(balance: int, risk_fraction: float, var: float) -> int:
    """The suggested position, in the balance's smallest unit, for a user's risk setting.

    The amount whose 95% one-horizon loss equals ``risk_fraction`` of the balance, capped at
    the balance (no leverage):  size = min(balance, floor(risk_fraction * balance / var)).
    ``var`` is the VaR as a positive fraction (0.02: a 2% loss is exceeded one time in
    twenty).  Rounding down keeps the VaR loss within the user's budget; a VaR of zero
    (no measurable risk) allows the whole balance."""
    if balance < 0:
        raise ValueError("balance cannot be negative")
    if not 0.0 <= risk_fraction <= 1.0:
        raise ValueError("risk_fraction lies between 0 and 1")
    if not (math.isfinite(var) and var >= 0.0):
        raise ValueError("var is a finite, non-negative fraction")
    if var == 0.0:
        return balance
    return min(balance, math.floor(risk_fraction * balance / var))
