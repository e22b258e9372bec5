"""The naive forecasts a model must beat before anyone should trade it.

Each baseline turns a simple rule into a probability of "up" for every test point, from the
closes up to that point and the labels of the fold's training samples only. A rule's states
(say up, down, or no view yet) are calibrated on the training set: the probability given for a
state is how often the price went up after that state in training, Laplace-smoothed so that a
state never seen gives one half rather than a certainty.

At a one-bar horizon persistence and the one-bar reversal read the same sign, so once calibrated
they give the same probabilities; they part ways at longer horizons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backend.signals.walkforward import FloatArray, IntArray, as_prices

# About a month of daily bars, the lookback most momentum studies start from (Jegadeesh & Titman
# use months; a month of bars is the analogue at any bar size and stays short enough to react).
MOMENTUM_LOOKBACK = 20

Predictor = Callable[[FloatArray, IntArray, IntArray, int], FloatArray]
"""(close, test indices, train indices, horizon) -> probability of "up" at each test index."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """A named naive forecast.

    ``always_long`` marks buy-and-hold: it calls "up" at every point and its strategy holds
    throughout, whatever its ``p`` (the training share of up moves, often just under one half).
    """

    name: str
    predict: Predictor
    always_long: bool = False


def _checked(
    close: FloatArray, test: IntArray, train: IntArray, horizon: int
) -> tuple[FloatArray, IntArray, IntArray]:
    """The inputs, refusing a training label that is only known after the first test point."""
    prices = as_prices(close)
    test_index = np.asarray(test, dtype=np.int64)
    train_index = np.asarray(train, dtype=np.int64)
    if horizon < 1:
        raise ValueError("horizon must be at least one bar")
    if len(test_index) and (test_index.min() < 0 or test_index.max() >= len(prices)):
        raise ValueError("test index outside the close series")
    if (
        len(train_index)
        and len(test_index)
        and (train_index.min() < 0 or train_index.max() + horizon > test_index.min())
    ):
        raise ValueError("a training label ends after the first test point: look-ahead")
    return prices, test_index, train_index


def _lagged_sign(prices: FloatArray, index: IntArray, lag: int) -> FloatArray:
    """sign(close[t] - close[t - lag]); 0 (no view) where there are not yet ``lag`` bars behind."""
    signs = np.zeros(len(index), dtype=np.float64)
    ready = index >= lag
    signs[ready] = np.sign(prices[index[ready]] - prices[index[ready] - lag])
    return signs


def _calibrate(
    prices: FloatArray,
    test: IntArray,
    train: IntArray,
    horizon: int,
    rule: Callable[[FloatArray, IntArray], FloatArray],
) -> FloatArray:
    """P(up | the rule's state) from the training samples, applied to the test points' states."""
    if not len(test):
        return np.empty(0, dtype=np.float64)
    train_states = rule(prices, train)
    train_up = (prices[train + horizon] > prices[train]).astype(np.float64)
    test_states = rule(prices, test)
    probabilities = np.empty(len(test), dtype=np.float64)
    for state in np.unique(test_states):
        seen = train_states == state
        p = (float(np.sum(train_up[seen])) + 1.0) / (float(np.sum(seen)) + 2.0)
        probabilities[test_states == state] = p
    return probabilities


def persistence(close: FloatArray, test: IntArray, train: IntArray, horizon: int) -> FloatArray:
    """The last ``horizon``-bar move repeats."""
    prices, test_index, train_index = _checked(close, test, train, horizon)
    return _calibrate(
        prices, test_index, train_index, horizon, lambda c, i: _lagged_sign(c, i, horizon)
    )


def reversal(close: FloatArray, test: IntArray, train: IntArray, horizon: int) -> FloatArray:
    """The last one-bar move reverses."""
    prices, test_index, train_index = _checked(close, test, train, horizon)
    return _calibrate(prices, test_index, train_index, horizon, lambda c, i: -_lagged_sign(c, i, 1))


def momentum(lookback: int = MOMENTUM_LOOKBACK) -> Predictor:
    """The sign of the last ``lookback``-bar move carries on."""
    if lookback < 1:
        raise ValueError("lookback must be at least one bar")

    def predict(close: FloatArray, test: IntArray, train: IntArray, horizon: int) -> FloatArray:
        prices, test_index, train_index = _checked(close, test, train, horizon)
        return _calibrate(
            prices, test_index, train_index, horizon, lambda c, i: _lagged_sign(c, i, lookback)
        )

    return predict


def buy_and_hold(close: FloatArray, test: IntArray, train: IntArray, horizon: int) -> FloatArray:
    """Always up, as sure of it as the training set's share of up moves."""
    prices, test_index, train_index = _checked(close, test, train, horizon)
    return _calibrate(
        prices, test_index, train_index, horizon, lambda c, i: np.ones(len(i), dtype=np.float64)
    )


def base_rate(close: FloatArray, test: IntArray, train: IntArray, horizon: int) -> FloatArray:
    """The share of up moves among every label already known at the test point.

    This is the training base rate kept up to date: at test point ``t`` the labels of samples up
    to ``t - horizon`` are known, training or not. It differs from buy-and-hold's frozen rate in
    the probability and, more visibly, in the strategy, which goes flat when the rate is below
    the threshold.
    """
    prices, test_index, _ = _checked(close, test, train, horizon)
    if not len(test_index):
        return np.empty(0, dtype=np.float64)
    known = max(int(test_index.max()) - horizon + 1, 0)
    ups = (prices[horizon : horizon + known] > prices[:known]).astype(np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(ups)))
    counts = np.clip(test_index - horizon + 1, 0, None)
    result: FloatArray = (cumulative[counts] + 1.0) / (counts + 2.0)
    return result


def default_baselines(momentum_lookback: int = MOMENTUM_LOOKBACK) -> tuple[Baseline, ...]:
    return (
        Baseline("persistence", persistence),
        Baseline("reversal", reversal),
        Baseline(f"momentum {momentum_lookback}", momentum(momentum_lookback)),
        Baseline("buy-and-hold", buy_and_hold, always_long=True),
        Baseline("base rate", base_rate),
    )
