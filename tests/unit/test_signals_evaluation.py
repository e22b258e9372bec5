"""The honest evaluation of signal models: folds, baselines, scores, tests and the verdict.

The two tests that matter most are the random walk (no model may find an edge in a series that
has none) and the positive control (a model that exploits real predictability the baselines miss
must be found to have one). Everything is seeded; the suite runs in a few seconds.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable

import numpy as np
import pytest

from backend.signals.backtest import (
    deflated_sharpe,
    expected_max_sharpe,
    long_flat,
    non_overlapping,
)
from backend.signals.baselines import default_baselines, persistence
from backend.signals.distributions import chi2_1_sf, student_t_cdf
from backend.signals.evaluation import evaluate
from backend.signals.metrics import (
    brier_score,
    diebold_mariano,
    log_loss,
    reliability,
    var_backtest,
    wilson_interval,
)
from backend.signals.walkforward import Fold, sample_count, up_labels, walk_forward

Array = np.ndarray
Feature = Callable[[Array, Array], Array]

HOURS_PER_YEAR = 24 * 365


# --- series and toy models -------------------------------------------------------------------


def gbm(seed: int, bars: int = 3000, drift: float = 0.0, vol: float = 0.01) -> Array:
    rng = np.random.default_rng(seed)
    steps = drift - 0.5 * vol * vol + vol * rng.standard_normal(bars - 1)
    return 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(steps))))


def autocorrelated(seed: int, *, lag: int, phi: float, bars: int = 3000) -> Array:
    """Log returns r_t = phi * r_{t-lag} + noise: predictable at that lag, and only there."""
    rng = np.random.default_rng(seed)
    noise = 0.01 * rng.standard_normal(bars - 1)
    r = np.zeros(bars - 1)
    for t in range(bars - 1):
        r[t] = noise[t] + (phi * r[t - lag] if t >= lag else 0.0)
    return 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(r))))


def past_return(skip: int, lookback: int) -> Feature:
    """log(close[t - skip] / close[t - skip - lookback]): a momentum feature, known at bar t."""

    def feature(close: Array, index: Array) -> Array:
        x = np.zeros(len(index))
        ok = index - skip - lookback >= 0
        x[ok] = np.log(close[index[ok] - skip] / close[index[ok] - skip - lookback])
        return x

    return feature


def fit_logistic(x: Array, y: Array) -> tuple[float, float]:
    """One-feature logistic regression by Newton's method on the standardised feature."""
    scale = float(np.std(x)) or 1.0
    z = x / scale
    a = b = 0.0
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(a + b * z)))
        w = p * (1 - p) + 1e-9
        g = np.array([np.sum(p - y), np.sum((p - y) * z)])
        h = np.array([[np.sum(w), np.sum(w * z)], [np.sum(w * z), np.sum(w * z * z)]])
        a, b = np.array([a, b]) - np.linalg.solve(h + 1e-6 * np.eye(2), g)
    return a, b / scale


def logistic_model(close: Array, folds: list[Fold], horizon: int, feature: Feature) -> list[Array]:
    """A "model": fit on each fold's training samples, predict its test points."""
    labels = up_labels(close, horizon)
    out = []
    for fold in folds:
        a, b = fit_logistic(feature(close, fold.train), labels[fold.train])
        out.append(1.0 / (1.0 + np.exp(-(a + b * feature(close, fold.test)))))
    return out


def random_model(seed: int, folds: list[Fold]) -> list[Array]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.0, 1.0, len(fold.test)) for fold in folds]


def folds_for(close: Array, horizon: int = 1, folds: int = 5) -> list[Fold]:
    n = sample_count(len(close), horizon)
    return walk_forward(n, folds=folds, min_train=500, horizon=horizon, embargo=5)


# --- walk-forward ----------------------------------------------------------------------------


@pytest.mark.parametrize(("horizon", "embargo"), [(1, 0), (1, 7), (5, 0), (5, 12)])
def test_walk_forward_purges_and_embargoes(horizon: int, embargo: int) -> None:
    n, min_train = 1000, 200
    folds = walk_forward(n, folds=4, min_train=min_train, horizon=horizon, embargo=embargo)
    tests = np.concatenate([f.test for f in folds])
    assert np.array_equal(tests, np.arange(min_train + horizon - 1, n))
    assert len(folds[0].train) == min_train
    for k, fold in enumerate(folds):
        # Label windows (i, i + h] and (t, t + h] overlap iff i < t + h and t < i + h.
        i, t = fold.train[:, None], fold.test[None, :]
        assert not np.any((i < t + horizon) & (t < i + horizon))
        for earlier in folds[:k]:
            end = int(earlier.test[-1]) + 1
            assert not np.any((fold.train >= end) & (fold.train < end + embargo))
        if k:
            assert set(folds[k - 1].train.tolist()) <= set(fold.train.tolist())
        # Nothing else is dropped: every label known by the block's first bar and not embargoed.
        expected = [
            s
            for s in range(int(fold.test[0]) - horizon + 1)
            if not any(int(e.test[-1]) < s <= int(e.test[-1]) + embargo for e in folds[:k])
        ]
        assert fold.train.tolist() == expected


def test_walk_forward_refuses_too_few_samples() -> None:
    with pytest.raises(ValueError, match="test points"):
        walk_forward(100, folds=5, min_train=97, horizon=1)
    with pytest.raises(ValueError, match="horizon"):
        walk_forward(100, folds=2, min_train=10, horizon=0)


# --- baselines -------------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 4])
def test_baselines_do_not_look_ahead(horizon: int) -> None:
    close = gbm(7, bars=1500)
    folds = walk_forward(
        sample_count(len(close), horizon), folds=3, min_train=300, horizon=horizon, embargo=3
    )
    rng = np.random.default_rng(8)
    for baseline in default_baselines():
        for fold in folds:
            full = baseline.predict(close, fold.test, fold.train, horizon)
            assert full.shape == fold.test.shape
            assert np.all((full > 0) & (full < 1))
            cut = int(fold.test[len(fold.test) // 2])
            past = fold.test[fold.test <= cut]
            truncated = baseline.predict(close[: cut + 1], past, fold.train, horizon)
            assert np.array_equal(truncated, full[: len(past)]), baseline.name
            other_future = close.copy()
            other_future[cut + 1 :] *= rng.uniform(0.5, 2.0, len(close) - cut - 1)
            rewritten = baseline.predict(other_future, past, fold.train, horizon)
            assert np.array_equal(rewritten, full[: len(past)]), baseline.name


def test_baselines_refuse_a_training_label_inside_the_test_period() -> None:
    close = gbm(1, bars=200)
    with pytest.raises(ValueError, match="look-ahead"):
        persistence(close, np.arange(100, 150), np.arange(0, 99), 3)


# --- scores ----------------------------------------------------------------------------------


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(50, 100) == pytest.approx((0.403832, 0.596168), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_brier_and_log_loss_by_hand() -> None:
    p, y = np.array([0.9, 0.2, 0.5]), np.array([1.0, 0.0, 1.0])
    assert brier_score(p, y) == pytest.approx((0.01 + 0.04 + 0.25) / 3)
    assert log_loss(p, y) == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.5)) / 3)
    # A certain miss is clipped, not infinite.
    assert log_loss(np.array([0.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(-math.log(1e-6))


def test_reliability_bins() -> None:
    p, y = np.array([0.05, 0.15, 0.12, 0.95, 1.0]), np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    bins = reliability(p, y)
    assert [(b.low, b.count) for b in bins] == [(0.0, 1), (0.1, 2), (0.9, 2)]
    assert bins[1].mean_predicted == pytest.approx(0.135)
    assert bins[1].observed == pytest.approx(0.5)


def test_distributions_against_known_values() -> None:
    assert student_t_cdf(2.0, 10) == pytest.approx(0.9633060, abs=1e-7)
    assert student_t_cdf(-2.0, 10) == pytest.approx(1 - 0.9633060, abs=1e-7)
    assert chi2_1_sf(3.841459) == pytest.approx(0.05, abs=1e-7)
    stats = pytest.importorskip("scipy.stats")
    for df in (3, 30, 2999):
        for t in (-4.0, -1.0, 0.5, 2.5):
            assert student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-10)


def test_diebold_mariano_equal_and_better() -> None:
    rng = np.random.default_rng(11)
    baseline = rng.normal(0.25, 0.05, 500)
    same = baseline + rng.normal(0.0, 0.01, 500)
    assert diebold_mariano(same, baseline).p_value > 0.2
    better = baseline - 0.02 + rng.normal(0.0, 0.01, 500)
    result = diebold_mariano(better, baseline)
    assert result.p_value < 1e-6
    assert result.statistic < 0
    assert diebold_mariano(baseline + 0.02, baseline).p_value == 1.0


def test_diebold_mariano_size_under_the_null() -> None:
    """Equal accuracy with serially correlated losses (h = 3): rejects about 5%, not more."""
    rng = np.random.default_rng(12)
    rejected = 0
    for _ in range(600):
        shocks = rng.standard_normal(402)
        difference = shocks[2:] + shocks[1:-1] + shocks[:-2]  # an MA(2), as h = 3 gives
        rejected += diebold_mariano(difference, np.zeros(400), horizon=3).p_value < 0.05
    assert 0.025 <= rejected / 600 <= 0.075


def test_kupiec_breach_rates() -> None:
    var = np.full(1000, 0.02)
    for breaches, passes in ((50, True), (15, False), (150, False)):
        returns = np.zeros(1000)
        returns[:: 1000 // breaches][:breaches] = -0.03
        result = var_backtest(var, returns, level=0.95)
        assert result.breaches == breaches
        assert result.passes is passes
    assert result.statistic == pytest.approx(
        2 * (150 * math.log(0.15 / 0.05) + 850 * math.log(0.85 / 0.95))
    )
    assert result.p_value < 1e-10


# --- strategy and the deflated Sharpe ratio --------------------------------------------------


def test_long_flat_with_fees_by_hand() -> None:
    fee = 0.001
    result = long_flat(
        np.array([1.0, 1.0, 0.0, 1.0]),
        np.array([0.10, -0.05, 0.20, 0.10]),
        fee_bps=10,
        periods_per_year=252,
    )
    expected = np.cumprod([1.0, (1 - fee) * 1.1, 0.95, 1 - fee, (1 - fee) * 1.1 * (1 - fee)])
    assert result.equity == pytest.approx(expected)
    assert result.total_return == pytest.approx(expected[-1] - 1)
    assert result.max_drawdown == pytest.approx(1 - expected[3] / expected[1])
    assert result.trades == 2
    assert result.sharpe == pytest.approx(result.sharpe_per_period * math.sqrt(252))


def test_non_overlapping_steps() -> None:
    assert non_overlapping(np.array([10, 11, 12, 13, 14, 15, 20]), 3).tolist() == [0, 3, 6]


def test_deflated_sharpe_falls_with_more_trials() -> None:
    values = [
        deflated_sharpe(
            0.1, trials=n, sharpe_variance=0.002, observations=1000, skewness=-0.5, kurtosis=5.0
        )
        for n in (1, 2, 10, 100, 1000)
    ]
    assert all(a > b for a, b in itertools.pairwise(values))
    # One trial is the probabilistic Sharpe ratio against zero.
    spread = 1 + 0.5 * 0.1 + 4 / 4 * 0.01
    assert values[0] == pytest.approx(0.5 * math.erfc(-0.1 * math.sqrt(999 / spread) / 2**0.5))
    assert expected_max_sharpe(10, 0.002) < expected_max_sharpe(100, 0.002)


# --- the verdict -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walk_has_no_edge(seed: int) -> None:
    close = gbm(seed, drift=0.0002)
    folds = folds_for(close)
    for name, predictions in (
        ("random", random_model(seed, folds)),
        ("momentum", logistic_model(close, folds, 1, past_return(0, 10))),
    ):
        report = evaluate(close, folds, predictions, horizon=1, bars_per_year=HOURS_PER_YEAR)
        assert report.edge is False, (name, report.reason)
        assert report.reason.startswith("no edge found: ")


def test_random_walk_has_no_edge_at_a_longer_horizon() -> None:
    close = gbm(4)
    folds = folds_for(close, horizon=6)
    predictions = logistic_model(close, folds, 6, past_return(0, 6))
    var = np.full(sum(len(f.test) for f in folds), 1.645 * 0.01 * math.sqrt(6))
    report = evaluate(
        close, folds, predictions, horizon=6, bars_per_year=HOURS_PER_YEAR, var_forecasts=var
    )
    assert report.edge is False
    assert report.var is not None
    assert report.var.passes
    assert report.model.strategy.periods == pytest.approx(report.observations / 6, abs=1)


def test_real_predictability_the_baselines_miss_is_an_edge() -> None:
    """Returns correlated with those two bars back: one-bar rules miss it, the model sees it."""
    close = autocorrelated(5, lag=2, phi=0.5)
    folds = folds_for(close)
    predictions = logistic_model(close, folds, 1, past_return(1, 1))
    report = evaluate(close, folds, predictions, horizon=1, bars_per_year=HOURS_PER_YEAR)
    assert report.edge is True, report.reason
    assert report.reason.startswith("edge found: ")
    assert report.model.hit_interval[0] > 0.6
    assert report.model.strategy.total_return > max(
        row.strategy.total_return for row in report.baselines
    )


def test_predictability_a_baseline_already_has_is_no_edge() -> None:
    """One-bar autocorrelation: persistence calls the same directions, so the model adds none."""
    close = autocorrelated(6, lag=1, phi=0.4)
    folds = folds_for(close)
    predictions = logistic_model(close, folds, 1, past_return(0, 1))
    report = evaluate(close, folds, predictions, horizon=1, bars_per_year=HOURS_PER_YEAR)
    assert report.best_baseline == "persistence"
    assert report.model.hit_rate > 0.6
    assert report.edge is False
    assert "hit rate" in report.reason


def test_report_is_json_and_a_table() -> None:
    close = gbm(9, bars=1500)
    folds = folds_for(close, folds=3)
    report = evaluate(
        close,
        folds,
        [np.full(len(f.test), 0.4) for f in folds],  # never long: a Sharpe with no variance
        horizon=1,
        bars_per_year=HOURS_PER_YEAR,
        trials=20,
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["model"]["strategy"]["sharpe"] is None
    assert data["edge"] is False
    assert {row["name"] for row in data["baselines"]} >= {"persistence", "buy-and-hold"}
    assert len(data["model"]["strategy"]["equity"]) == report.model.strategy.periods + 1
    table = report.table()
    assert table.splitlines()[0].split()[:2] == ["name", "hit"]
    for row in ("model", "persistence", "reversal", "momentum 20", "buy-and-hold", "base rate"):
        assert row in table
    assert "edge: no. no edge found" in table
