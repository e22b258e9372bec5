"""The signal models: no look-ahead in any input, reproducible training, a registry that refuses
what it cannot trust, and a scorer whose batch equals its parts.

Models here are tiny (a few hundred bars of the bundled history, one or two epochs): the point
is the plumbing, not the skill; ``bench/signals_bench.py`` trains the real ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backend.signals import features as F
from backend.signals import registry
from backend.signals.candles import Candles, load_bundled
from backend.signals.garch import fit_garch, garch_variance
from backend.signals.patterns import MIN_OCCURRENCES, PATTERNS, hit_rates, pattern_flags
from backend.signals.pipeline import train_and_save
from backend.signals.predictors.direction import DirectionConfig, DirectionModel
from backend.signals.predictors.volatility import VolatilityModel, fit_qlike, position_size
from backend.signals.risk_report import qlike
from backend.signals.scorer import NotEnoughHistory, Scorer
from backend.signals.train import TrainConfig
from backend.signals.walkforward import Fold

TINY = DirectionConfig(width=8, epochs=2, batch=64, seed=11)
CUTS = (F.WARMUP + 1, 420, 613, 777)


@pytest.fixture(scope="module")
def candles() -> Candles:
    """900 real hours (July-August 2017): patterns fire on real candles, rarely on noise."""
    return load_bundled("btc_usd_1h")[:900]


@pytest.fixture(scope="module")
def full_windows(candles: Candles) -> np.ndarray:
    return F.windows(candles, np.arange(F.WARMUP, len(candles)))


def train_range(candles: Candles, horizon: int = 4) -> np.ndarray:
    return np.arange(0, len(candles) - horizon, dtype=np.int64)


@pytest.fixture(scope="module")
def direction(candles: Candles) -> DirectionModel:
    model = DirectionModel((1, 4), TINY)
    model.fit(candles, train_range(candles))
    return model


@pytest.fixture(scope="module")
def volatility(candles: Candles) -> VolatilityModel:
    model = VolatilityModel((1, 4))
    model.fit(candles, train_range(candles))
    return model


# --- no look-ahead ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", F.FEATURES)
def test_truncating_the_future_leaves_every_past_feature_unchanged(
    name: str, candles: Candles, full_windows: np.ndarray
) -> None:
    column = F.FEATURES.index(name)
    for cut in CUTS:
        bars = np.arange(F.WARMUP, cut)
        past = F.windows(candles[:cut], bars)
        assert np.array_equal(past[:, :, column], full_windows[: len(bars), :, column]), (
            f"{name} of a bar before {cut} changed when later candles were dropped"
        )


def test_changing_the_future_leaves_the_past_unchanged(
    candles: Candles, full_windows: np.ndarray
) -> None:
    """Stronger than truncation: wild candles after the cut change nothing before it."""
    cut = 600
    rng = np.random.default_rng(3)
    later = len(candles) - cut
    close = np.concatenate(
        [candles.close[:cut], candles.close[cut - 1] * rng.uniform(0.5, 2, later)]
    )
    high = np.concatenate([candles.high[:cut], close[cut:] * 1.05])
    low = np.concatenate([candles.low[:cut], close[cut:] * 0.9])
    opened = np.concatenate([candles.open[:cut], close[cut:]])
    volume = np.concatenate([candles.volume[:cut], rng.uniform(0, 1e6, later)])
    changed = Candles(candles.time, opened, high, low, close, volume)
    bars = np.arange(F.WARMUP, cut)
    assert np.array_equal(F.windows(changed, bars), full_windows[: len(bars)])


def test_the_history_is_long_enough_for_patterns_to_fire(full_windows: np.ndarray) -> None:
    flags = full_windows[:, -1, len(F.NUMERIC) :]
    assert np.count_nonzero(flags) > 100  # else the pattern columns above tested only zeros


def test_the_last_window_is_the_window_of_the_last_bar(
    candles: Candles, full_windows: np.ndarray
) -> None:
    for cut in CUTS:
        assert np.array_equal(F.last_window(candles[:cut]), full_windows[cut - 1 - F.WARMUP])
    with pytest.raises(ValueError, match="needs"):
        F.last_window(candles[: F.TAIL - 1])


def test_no_window_before_the_warm_up(candles: Candles) -> None:
    with pytest.raises(ValueError, match="windows exist"):
        F.windows(candles, np.array([F.WARMUP - 1]))
    assert not np.isnan(F.windows(candles, np.array([F.WARMUP]))).any()


def test_volatility_inputs_look_only_back(candles: Candles) -> None:
    model = VolatilityModel()
    full = model.inputs(candles, np.arange(model.warmup, len(candles)))
    for cut in CUTS:
        bars = np.arange(model.warmup, cut)
        assert np.array_equal(model.inputs(candles[:cut], bars), full[: len(bars)])
        assert np.array_equal(model.last_inputs(candles[:cut]), full[cut - 1 - model.warmup])


def test_the_scaler_is_fitted_on_the_training_bars_only(candles: Candles) -> None:
    bars = F.bar_features(candles)
    early = F.Scaler.fit(bars, np.arange(F.WARMUP, 500))
    cut = F.Scaler.fit(F.bar_features(candles[:500]), np.arange(F.WARMUP, 500))
    assert np.array_equal(early.mean, cut.mean) and np.array_equal(early.std, cut.std)
    assert np.all(early.mean[len(F.NUMERIC) :] == 0) and np.all(early.std[len(F.NUMERIC) :] == 1)


# --- patterns --------------------------------------------------------------------------------


def test_patterns_are_minus_one_zero_or_one(candles: Candles) -> None:
    flags = pattern_flags(candles)
    assert flags.shape == (len(candles), len(PATTERNS)) == (len(candles), 61)
    assert set(np.unique(flags).tolist()) <= {-1, 0, 1}
    assert {-1, 1} <= set(np.unique(flags).tolist())


def test_hit_rates_count_test_bars_only_and_need_enough_history() -> None:
    close = np.full(400, 100.0)
    close[1::2] = 101.0  # up after every even bar, down after every odd one
    flags = np.zeros((400, len(PATTERNS)), dtype=np.int8)
    flags[0:400:2, 0] = 1  # bullish before each rise: always right
    flags[1:20:2, 1] = -1  # bearish before a fall, only ten times
    flags[0:100, 2] = 1  # fires only in the training part: no test record
    fold = Fold(train=np.arange(0, 150), test=np.arange(200, 398))
    records = hit_rates(flags, close, [fold], horizon=1)
    first, second, third = (records[PATTERNS[j]] for j in range(3))
    assert (first.count, first.hits, first.hit_rate) == (99, 99, 1.0)
    assert first.interval is not None and first.interval[0] > 0.95
    assert second.count == 0 and second.hit_rate is None
    assert third.count == 0 and third.hit_rate is None
    few = hit_rates(flags, close, [Fold(np.arange(0, 1), np.arange(200, 200 + 2 * 20))], horizon=1)
    assert few[PATTERNS[0]].count == 20 < MIN_OCCURRENCES
    assert few[PATTERNS[0]].hit_rate is None and few[PATTERNS[0]].interval is None


# --- training and the registry ---------------------------------------------------------------


def test_training_is_deterministic_for_a_seed(candles: Candles, direction: DirectionModel) -> None:
    again = DirectionModel((1, 4), TINY)
    again.fit(candles, train_range(candles))
    for name, tensor in direction.tensors().items():
        assert np.array_equal(tensor.numpy(), again.tensors()[name].numpy()), name
    other = DirectionModel((1, 4), DirectionConfig(width=8, epochs=2, batch=64, seed=12))
    other.fit(candles, train_range(candles))
    assert not np.array_equal(
        direction.tensors()["net.head.weight"].numpy(), other.tensors()["net.head.weight"].numpy()
    )


def test_predictions_are_probabilities(candles: Candles, direction: DirectionModel) -> None:
    p = direction.predict_at(candles, np.arange(F.WARMUP, len(candles)))
    assert p.shape == (len(candles) - F.WARMUP, 2)
    assert np.all((p >= 0) & (p <= 1)) and not np.isnan(p).any()


def save_both(root: Path, candles: Candles, *models: object) -> list[registry.Entry]:
    data = registry.DataInfo.of(candles, market="BTC-USD", interval="1h")
    verdict = registry.Verdict({"n": 1}, False, "no edge found: a test", "a table")
    saved = []
    for model in models:
        assert isinstance(model, DirectionModel | VolatilityModel)
        saved.append(
            registry.save(
                root,
                model,
                data=data,
                evaluation={h: verdict for h in model.horizons},
                training={"seed": 11},
            )
        )
    return saved


def test_save_and_load_give_identical_predictions(
    tmp_path: Path, candles: Candles, direction: DirectionModel, volatility: VolatilityModel
) -> None:
    entries = save_both(tmp_path, candles, direction, volatility)
    assert [(e.kind, e.version) for e in entries] == [("direction", 1), ("volatility", 1)]
    meta = json.loads((entries[0].path / registry.METADATA).read_text())
    assert meta["features"] == list(F.FEATURES) and meta["window"] == F.WINDOW
    assert meta["data"]["sha256"] == registry.candles_sha256(candles)
    assert meta["data"]["first_time"] == int(candles.time[0])
    assert len(meta["scaler"]["mean"]) == len(F.FEATURES)
    assert meta["weights"]["sha256"] == registry.file_sha256(entries[0].path / registry.WEIGHTS)
    bars = np.arange(F.WARMUP, len(candles))
    for model in (direction, volatility):
        loaded, found = registry.load(tmp_path, model.kind)
        assert found.version == 1
        assert np.array_equal(loaded.predict_at(candles, bars), model.predict_at(candles, bars))
    assert save_both(tmp_path, candles, direction)[0].version == 2


def test_loading_refuses_tampered_weights(
    tmp_path: Path, candles: Candles, direction: DirectionModel
) -> None:
    (entry,) = save_both(tmp_path, candles, direction)
    weights = entry.path / registry.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(registry.ModelRefused, match="sha256"):
        registry.load(tmp_path, "direction")


def test_loading_refuses_another_feature_list(
    tmp_path: Path, candles: Candles, direction: DirectionModel
) -> None:
    (entry,) = save_both(tmp_path, candles, direction)
    path = entry.path / registry.METADATA
    meta = json.loads(path.read_text())
    meta["features"] = meta["features"][:-1]
    path.write_text(json.dumps(meta))
    with pytest.raises(registry.ModelRefused, match="other features"):
        registry.load(tmp_path, "direction")


def test_loading_refuses_a_scaler_that_differs_from_the_weights(
    tmp_path: Path, candles: Candles, direction: DirectionModel
) -> None:
    (entry,) = save_both(tmp_path, candles, direction)
    path = entry.path / registry.METADATA
    meta = json.loads(path.read_text())
    meta["scaler"]["std"][0] *= 2
    path.write_text(json.dumps(meta))
    with pytest.raises(registry.ModelRefused, match="scaler"):
        registry.load(tmp_path, "direction")


def test_an_empty_registry_says_how_to_fill_it(tmp_path: Path) -> None:
    with pytest.raises(registry.ModelRefused, match="signals train"):
        Scorer.load(tmp_path)


# --- risk ------------------------------------------------------------------------------------


def test_position_size_spends_the_risk_budget_at_the_var() -> None:
    # 2% of 10,000 is 200 at risk; a 95% loss of 4% allows 5,000.
    assert position_size(10_000, 0.02, 0.04) == 5_000
    assert position_size(10_000, 0.02, 0.03) == 6_666  # rounded down: the loss stays <= 200
    assert position_size(10_000, 0.5, 0.04) == 10_000  # capped at the balance
    assert position_size(10_000, 0.0, 0.04) == 0
    assert position_size(10_000, 0.02, 0.0) == 10_000
    for bad in ((-1, 0.1, 0.1), (10, 1.5, 0.1), (10, 0.1, -0.1), (10, 0.1, math.nan)):
        with pytest.raises(ValueError, match=r"balance|risk_fraction|var"):
            position_size(*bad)


def simulate_garch(n: int, omega: float, alpha: float, beta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(n)
    returns = np.empty(n)
    variance = omega / (1 - alpha - beta)
    for t in range(n):
        returns[t] = math.sqrt(variance) * shocks[t]
        variance = omega + alpha * returns[t] ** 2 + beta * variance
    return returns


def test_garch_baseline_recovers_a_simulated_garch() -> None:
    omega, alpha, beta = 2e-6, 0.10, 0.85  # hourly-crypto-like: ~1% volatility
    returns = simulate_garch(6000, omega, alpha, beta, seed=5)
    fit = fit_garch(returns, until=5000)
    assert fit.converged
    assert abs(fit.alpha - alpha) < 0.04 and abs(fit.beta - beta) < 0.06
    assert 0.5 < fit.omega / omega < 2.0
    # The one-step forecast follows the recursion on the fitted parameters.
    at = np.arange(5000, 5999)
    one = garch_variance(fit, at, 1)
    expected = fit.omega + fit.alpha * returns[at[1:]] ** 2 + fit.beta * one[:-1]
    assert np.allclose(one[1:], expected, rtol=1e-6)
    four = garch_variance(fit, at, 4)
    assert np.all(four > 3 * one) and np.all(four < 5 * one)


def test_qlike_regression_recovers_a_log_linear_variance() -> None:
    rng = np.random.default_rng(9)
    x = np.column_stack([np.ones(20_000), rng.standard_normal((20_000, 2))])
    beta = np.array([-9.0, 0.5, -0.3])
    realised = np.exp(x @ beta) * rng.standard_normal(20_000) ** 2
    assert np.allclose(fit_qlike(x, realised), beta, atol=0.05)
    assert qlike(np.array([2.0]), np.array([2.0]))[0] == 0.0


def test_value_at_risk_is_a_positive_fraction(
    candles: Candles, volatility: VolatilityModel
) -> None:
    sigma = volatility.predict_at(candles, np.arange(200, len(candles)))
    var = volatility.value_at_risk(sigma)
    assert np.all(sigma > 0) and np.all((var > 0) & (var < 1))
    assert np.all(var[:, 1] > var[:, 0])  # four hours risk more than one


# --- serving ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer(
    tmp_path_factory: pytest.TempPathFactory,
    candles: Candles,
    direction: DirectionModel,
    volatility: VolatilityModel,
) -> Scorer:
    root = tmp_path_factory.mktemp("registry")
    save_both(root, candles, direction, volatility)
    return Scorer.load(root)


def markets(candles: Candles) -> dict[str, Candles]:
    """Eight "markets": the history ending at different hours."""
    return {f"M{k}-USD": candles[: len(candles) - 37 * k] for k in range(8)}


def test_a_batch_scores_like_each_market_alone(scorer: Scorer, candles: Candles) -> None:
    batch = markets(candles)
    together = scorer.score(batch)
    for market, history in batch.items():
        alone = scorer.score({market: history})[market]
        signal = together[market]
        assert signal.time == int(history.time[-1])
        assert signal.probability_up == pytest.approx(alone.probability_up, abs=1e-6)
        assert signal.volatility == pytest.approx(alone.volatility, rel=1e-12)
        assert signal.patterns == alone.patterns
        assert signal.direction == ("up" if signal.probability_up > 0.5 else "down")
        assert 0 < signal.var95 < 1 and not signal.published
        assert signal.reason.startswith("no edge found")
    assert scorer.score(batch) == together  # deterministic
    assert scorer.score(batch, horizon=4)["M0-USD"].horizon == 4


def test_the_scorer_reports_the_patterns_of_the_last_candle(
    scorer: Scorer, candles: Candles
) -> None:
    flags = pattern_flags(candles)
    bar = next(i for i in range(len(candles) - 1, F.TAIL, -1) if np.count_nonzero(flags[i]))
    signal = scorer.score({"BTC-USD": candles[: bar + 1]})["BTC-USD"]
    fired = {PATTERNS[j]: int(flags[bar, j]) for j in np.flatnonzero(flags[bar])}
    assert {call.name: call.signal for call in signal.patterns} == fired
    assert all(call.hit_rate is None and call.occurrences == 0 for call in signal.patterns)


def test_the_scorer_refuses_a_market_with_too_little_history(
    scorer: Scorer, candles: Candles
) -> None:
    with pytest.raises(NotEnoughHistory, match="SHORT-USD"):
        scorer.score({"BTC-USD": candles, "SHORT-USD": candles[:50]})


def test_the_training_job_registers_both_models_with_their_verdicts(
    tmp_path: Path, candles: Candles
) -> None:
    config = TrainConfig(folds=2, direction=TINY)
    trained, entries = train_and_save(
        candles, market="BTC-USD", interval="1h", root=tmp_path, config=config
    )
    assert [e.kind for e in entries] == ["direction", "volatility"]
    meta = entries[0].metadata
    assert set(meta["evaluation"]) == {"1", "4"}
    for h in ("1", "4"):
        verdict = meta["evaluation"][h]
        assert verdict["edge"] == trained.evaluation.direction[int(h)].edge
        assert verdict["metrics"]["observations"] > 0
        assert set(meta["extra"]["patterns"][h]) == set(PATTERNS)
    assert meta["training"]["seed"] == TINY.seed
    assert entries[1].metadata["evaluation"]["1"]["metrics"]["baseline"] == "GARCH(1,1)"
    signal = Scorer.load(tmp_path).score({"BTC-USD": candles})["BTC-USD"]
    assert signal.model_version == 1 and signal.risk_version == 1
