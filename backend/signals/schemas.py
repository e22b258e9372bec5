"""What the signals API says.  Probabilities, volatilities and VaRs are fractions (0.021 is
2.1%); money (a balance, a suggested size) is a decimal string in the market's quote asset."""

from __future__ import annotations

import msgspec


class PatternView(msgspec.Struct):
    name: str
    """TA-Lib's function name, e.g. CDLENGULFING."""
    signal: int
    """+1 bullish, -1 bearish."""
    hit_rate: float | None
    """Its out-of-sample hit rate at the signal's horizon; null: too few occurrences."""
    occurrences: int


class SignalView(msgspec.Struct):
    """The signal of a market's last closed candle; also the `signals:<MARKET>` event."""

    market: str
    interval: str
    time: int
    """The scored candle's opening time, unix seconds."""
    horizon: int
    """In bars of `interval`."""
    horizon_hours: float
    direction: str
    """"up" when probability_up > 0.5, else "down"."""
    probability_up: float
    published: bool
    """The model beat the best baseline out of sample with significance; false: "no edge
    found" (see `reason`), and the direction is no advice."""
    reason: str
    volatility: float
    """Standard deviation of the horizon's log return."""
    var95: float
    """The loss exceeded one horizon in twenty, a positive fraction of value."""
    model_version: int
    patterns: list[PatternView]
    source: str
    """"feed", or "simulator" when the history it read was (partly) made up by the demo's
    backfill."""
    backtest_hit_rate: float | None
    """The model's out-of-sample hit rate at this horizon..."""
    baseline: str | None
    """...and the best baseline's name..."""
    baseline_hit_rate: float | None
    """...and its hit rate."""


class RiskView(msgspec.Struct):
    volatility: float
    var95: float
    balance: str
    """Your available quote-asset balance."""
    risk_fraction: float
    """The share of the balance to lose at the 95% VaR (the `risk` parameter)."""
    suggested_size: str
    """In the quote asset: the position whose 95% loss is `risk_fraction` of the balance,
    at most the balance."""


class SignalDetail(msgspec.Struct):
    signal: SignalView
    risk: RiskView


class TrainedOn(msgspec.Struct):
    market: str
    interval: str
    first: int
    """Unix seconds of the first and last candle of the training history."""
    last: int


class BaselineView(msgspec.Struct):
    name: str
    hit_rate: float | None


class ReliabilityBin(msgspec.Struct):
    predicted: float | None
    """The mean predicted probability of "up" in the bin..."""
    observed: float | None
    """...and how often it was up."""
    count: int


class EquityPoint(msgspec.Struct):
    i: int
    """The out-of-sample step."""
    strategy: float | None
    """Long/flat on the model's calls, after fees (1 at the start)."""
    buy_hold: float | None


class BacktestView(msgspec.Struct):
    model_version: int
    horizon: int
    trained_on: TrainedOn
    points: int
    """Out-of-sample test points of the walk-forward evaluation."""
    hit_rate: float | None
    hit_rate_ci: list[float | None]
    """The 95% Wilson interval: [low, high]."""
    baseline: BaselineView
    """The best baseline (lowest Brier score)."""
    brier: float | None
    baseline_brier: float | None
    dm_p: float | None
    """One-sided Diebold-Mariano p-value against the best baseline."""
    edge: bool
    reason: str
    reliability: list[ReliabilityBin]
    equity: list[EquityPoint]
    """At most 200 points of the two equity curves."""


class LiveView(msgspec.Struct):
    scored: int
    """Published signals whose horizon has passed (a missing later candle does not count)."""
    hits: int
    hit_rate: float | None
    hit_rate_ci: list[float] | None
    brier: float | None
    reliability: list[ReliabilityBin]


class RecordView(msgspec.Struct):
    market: str
    status: str
    """"ready"; with no model yet "training", "failed" or "untrained" (backtest is null)."""
    backtest: BacktestView | None
    live: LiveView
