"""The verdict on a volatility forecast: its out-of-sample losses beside GARCH(1,1), and its VaR.

Two losses, both reported, because they disagree on purpose.  QLIKE (Patton 2011) is the loss
that ranks variance forecasts consistently when the realised variance is a noisy proxy, and it
punishes forecasting calm before a storm far more than the reverse; it is the one the verdict
uses.  MSE on the variance is the familiar one, dominated by the few crash hours.  Each VaR is
backtested with Kupiec's test (``metrics.var_backtest``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from backend.signals.metrics import DieboldMariano, VarBacktest, diebold_mariano, var_backtest
from backend.signals.report import text_table
from backend.signals.walkforward import FloatArray, Fold, as_prices, forward_returns

# The same one-sided 5% level as the direction verdict (evaluation.SIGNIFICANCE).
SIGNIFICANCE = 0.05
# Realised variances are floored here for QLIKE's logarithm, as in the model (VAR_FLOOR).
REALISED_FLOOR = 1e-8
# Variances print in squared percent (an hourly BTC variance is ~0.5 %^2), losses in its units.
_PERCENT2 = 1e4


def qlike(realised: FloatArray, forecast: FloatArray) -> FloatArray:
    """RV/F - ln(RV/F) - 1 per point: zero for a perfect forecast, always non-negative."""
    ratio = np.maximum(realised, REALISED_FLOOR) / forecast
    losses: FloatArray = ratio - np.log(ratio) - 1.0
    return losses


def squared_error(realised: FloatArray, forecast: FloatArray) -> FloatArray:
    """(RV - F)^2 per point, in squared percent squared."""
    losses: FloatArray = ((realised - forecast) * _PERCENT2) ** 2
    return losses


@dataclass(frozen=True, slots=True, eq=False)
class RiskRow:
    name: str
    qlike: float
    mse: float
    mean_forecast: float  # the forecast variance's mean, in squared percent
    dm_qlike: DieboldMariano | None  # against the baseline; None for the baseline itself
    dm_mse: DieboldMariano | None
    var: VarBacktest

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "qlike": _number(self.qlike),
            "mse": _number(self.mse),
            "mean_forecast": _number(self.mean_forecast),
            "dm_qlike_p": None if self.dm_qlike is None else _number(self.dm_qlike.p_value),
            "dm_mse_p": None if self.dm_mse is None else _number(self.dm_mse.p_value),
            "var": {
                "breaches": self.var.breaches,
                "observations": self.var.observations,
                "breach_rate": _number(self.var.breach_rate),
                "expected_rate": self.var.expected_rate,
                "p_value": _number(self.var.p_value),
                "passes": self.var.passes,
            },
        }


@dataclass(frozen=True, slots=True, eq=False)
class RiskReport:
    horizon: int
    observations: int
    folds: int
    level: float
    realised: float  # the mean realised variance of the test points, in squared percent
    model: RiskRow
    baselines: tuple[RiskRow, ...]
    baseline: str  # the row the DM tests compare against
    edge: bool  # QLIKE significantly below the baseline's
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "horizon": self.horizon,
            "observations": self.observations,
            "folds": self.folds,
            "level": self.level,
            "realised": _number(self.realised),
            "model": self.model.to_dict(),
            "baselines": [row.to_dict() for row in self.baselines],
            "baseline": self.baseline,
            "edge": self.edge,
            "reason": self.reason,
        }

    def table(self) -> str:
        header = ("name", "QLIKE", "DM p", "MSE (%^4)", "DM p", "mean var (%^2)", "VaR breaches")
        rows = [header]
        for row in (self.model, *self.baselines):
            rows.append(
                (
                    row.name,
                    f"{row.qlike:.4f}",
                    _p(row.dm_qlike),
                    f"{row.mse:.4g}",
                    _p(row.dm_mse),
                    f"{row.mean_forecast:.4f}",
                    f"{row.var.breach_rate:.1%} (Kupiec p {_pv(row.var.p_value)}"
                    f"{'' if row.var.passes else ', fails'})",
                )
            )
        text = text_table(rows)
        text.append("")
        text.append(
            f"{self.observations} out-of-sample points in {self.folds} folds, horizon "
            f"{self.horizon} bar(s); realised variance {self.realised:.4f} %^2 on average; "
            f"{self.level:.0%} VaR expects {1 - self.level:.0%} breaches; DM against "
            f"{self.baseline}"
        )
        text.append(f"edge: {'yes' if self.edge else 'no'}. {self.reason}")
        return "\n".join(text)


def evaluate_risk(
    close: FloatArray,
    folds: Sequence[Fold],
    variances: Mapping[str, FloatArray],
    var: Mapping[str, FloatArray],
    *,
    horizon: int,
    baseline: str,
    level: float = 0.95,
) -> RiskReport:
    """Score variance forecasts of the ``horizon``-bar log return at the folds' test bars.

    ``variances`` and ``var`` map each forecaster's name (the first one is the model) to its
    forecasts over the concatenated test bars; ``baseline`` names the one to beat."""
    prices = as_prices(close)
    test = np.concatenate([fold.test for fold in folds]).astype(np.int64)
    names = list(variances)
    if not names or baseline not in variances or names[0] == baseline:
        raise ValueError("the model comes first and the baseline is another forecaster")
    log_close = np.log(prices)
    steps = np.diff(log_close) ** 2
    realised = steps[test[:, None] + np.arange(horizon)].sum(axis=1)
    returns = forward_returns(prices, horizon)[test]
    q_losses = {n: qlike(realised, np.asarray(variances[n])) for n in names}
    m_losses = {n: squared_error(realised, np.asarray(variances[n])) for n in names}
    rows = []
    for name in names:
        other = name != baseline
        rows.append(
            RiskRow(
                name=name,
                qlike=float(np.mean(q_losses[name])),
                mse=float(np.mean(m_losses[name])),
                mean_forecast=float(np.mean(variances[name])) * _PERCENT2,
                dm_qlike=diebold_mariano(q_losses[name], q_losses[baseline], horizon=horizon)
                if other
                else None,
                dm_mse=diebold_mariano(m_losses[name], m_losses[baseline], horizon=horizon)
                if other
                else None,
                var=var_backtest(np.asarray(var[name]), returns, level=level),
            )
        )
    model, base = rows[0], rows[names.index(baseline)]
    dm = model.dm_qlike
    p = dm.p_value if dm is not None else math.nan
    edge = model.qlike < base.qlike and p < SIGNIFICANCE
    verb = "is" if edge else "is not"
    reason = (
        f"QLIKE {model.qlike:.4f} {verb} significantly below {baseline}'s {base.qlike:.4f} "
        f"(one-sided DM p {_pv(p)}, needs p < {SIGNIFICANCE}); its {level:.0%} VaR was "
        f"breached {model.var.breach_rate:.1%} of the time "
        f"({'consistent with' if model.var.passes else 'rejected at'} {1 - level:.0%} by Kupiec)."
    )
    return RiskReport(
        horizon=horizon,
        observations=len(test),
        folds=len(folds),
        level=level,
        realised=float(np.mean(realised)) * _PERCENT2,
        model=model,
        baselines=tuple(rows[1:]),
        baseline=baseline,
        edge=edge,
        reason=("better than the baseline: " if edge else "no edge over the baseline: ") + reason,
    )


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _p(dm: DieboldMariano | None) -> str:
    return "-" if dm is None else _pv(dm.p_value)


def _pv(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
