"""Samples, labels and walk-forward folds with purge and embargo.

A sample is a bar ``t`` at which a model may look at every close up to and including ``close[t]``;
its label is whether the close ``horizon`` bars later is higher, so the label is only known at
``t + horizon``. That delay is what leaks into a naive split: a training sample just before the
test period has a label decided inside it. Purging drops those samples; the embargo (López de
Prado, *Advances in Financial Machine Learning*, ch. 7) also drops the samples right after each
test block from every later training set, so serially correlated features near a block's edge do
not tie one fold's score to the next model's fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def as_prices(close: FloatArray) -> FloatArray:
    """The close series as a flat float array; refuses what would silently give nonsense labels."""
    prices = np.asarray(close, dtype=np.float64)
    if prices.ndim != 1:
        raise ValueError("close must be one-dimensional")
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        raise ValueError("close must hold finite positive prices")
    return prices


def sample_count(bars: int, horizon: int) -> int:
    """How many samples a series of ``bars`` closes has: the last ``horizon`` bars have no label."""
    if horizon < 1:
        raise ValueError("horizon must be at least one bar")
    return max(bars - horizon, 0)


def forward_returns(close: FloatArray, horizon: int) -> FloatArray:
    """The simple return from ``close[t]`` to ``close[t + horizon]``, one per sample."""
    prices = as_prices(close)
    n = sample_count(len(prices), horizon)
    result: FloatArray = prices[horizon : horizon + n] / prices[:n] - 1.0
    return result


def up_labels(close: FloatArray, horizon: int) -> FloatArray:
    """1.0 where the close ``horizon`` bars later is higher, else 0.0 (unchanged is not up)."""
    return (forward_returns(close, horizon) > 0).astype(np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """One step of the walk: fit on ``train``, predict ``test``; sample indices, ascending."""

    train: IntArray
    test: IntArray


def walk_forward(
    n: int, *, folds: int, min_train: int, horizon: int, embargo: int = 0
) -> list[Fold]:
    """Expanding-window folds over ``n`` samples (``sample_count(len(close), horizon)``).

    The samples from the first test point on are cut into ``folds`` contiguous blocks of nearly
    equal size. Each block trains on every earlier sample whose label window ``(i, i + horizon]``
    ends by the block's first bar (purge), less the ``embargo`` samples after each earlier block.
    The first block starts where its purged training set holds exactly ``min_train`` samples, so
    no fold trains on fewer.

    In a pure forward walk the purge is what stops leakage; the embargo costs a few samples and
    keeps the folds' scores from leaning on one another, which the significance tests assume.
    """
    if folds < 1:
        raise ValueError("folds must be at least 1")
    if min_train < 1:
        raise ValueError("min_train must be at least 1")
    if horizon < 1:
        raise ValueError("horizon must be at least one bar")
    if embargo < 0:
        raise ValueError("embargo cannot be negative")
    first_test = min_train + horizon - 1
    if n - first_test < folds:
        raise ValueError(
            f"{n} samples leave {max(n - first_test, 0)} test points for {folds} folds "
            f"after {min_train} training samples and a {horizon}-bar purge"
        )
    blocks = np.array_split(np.arange(first_test, n, dtype=np.int64), folds)
    embargoed = np.zeros(n, dtype=bool)
    result: list[Fold] = []
    for block in blocks:
        # Sample i's label is known at i + horizon; it may train a model used from that bar on.
        candidates = np.arange(0, int(block[0]) - horizon + 1, dtype=np.int64)
        result.append(Fold(train=candidates[~embargoed[candidates]], test=block))
        end = int(block[-1]) + 1
        embargoed[end : end + embargo] = True
    return result
