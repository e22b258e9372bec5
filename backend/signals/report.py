"""The evaluation's report: plain data for the model's metadata and the UI, a table for the CLI."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from backend.signals.backtest import StrategyResult
from backend.signals.metrics import DieboldMariano, ReliabilityBin, VarBacktest


def text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain-text columns for the CLI: the first left-aligned, the rest right-aligned, a rule
    under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return text


@dataclass(frozen=True, slots=True, eq=False)
class Row:
    """One forecaster's out-of-sample record: the model's or a baseline's."""

    name: str
    observations: int
    hit_rate: float
    hit_interval: tuple[float, float]
    brier: float
    log_loss: float
    reliability: tuple[ReliabilityBin, ...]
    dm: DieboldMariano | None  # against the best baseline; None for the best baseline itself
    strategy: StrategyResult
    deflated_sharpe: float

    def to_dict(self) -> dict[str, object]:
        s = self.strategy
        return {
            "name": self.name,
            "observations": self.observations,
            "hit_rate": _number(self.hit_rate),
            "hit_interval": [_number(v) for v in self.hit_interval],
            "brier": _number(self.brier),
            "log_loss": _number(self.log_loss),
            "reliability": [
                {
                    "low": b.low,
                    "high": b.high,
                    "mean_predicted": _number(b.mean_predicted),
                    "observed": _number(b.observed),
                    "count": b.count,
                }
                for b in self.reliability
            ],
            "dm": None
            if self.dm is None
            else {
                "statistic": _number(self.dm.statistic),
                "p_value": _number(self.dm.p_value),
                "mean_difference": _number(self.dm.mean_difference),
            },
            "strategy": {
                "total_return": _number(s.total_return),
                "max_drawdown": _number(s.max_drawdown),
                "sharpe": _number(s.sharpe),
                "trades": s.trades,
                "periods": s.periods,
                "equity": [_number(v) for v in s.equity.tolist()],
            },
            "deflated_sharpe": _number(self.deflated_sharpe),
        }


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    horizon: int
    observations: int
    folds: int
    up_rate: float  # share of test points whose next horizon was up
    threshold: float
    fee_bps: float
    trials: int
    model: Row
    baselines: tuple[Row, ...]
    best_baseline: str
    edge: bool
    reason: str
    rule: str  # the edge rule in words, stored beside the verdict it produced
    var: VarBacktest | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain JSON data (NaN and infinities as null), as stored in the model's metadata."""
        return {
            "horizon": self.horizon,
            "observations": self.observations,
            "folds": self.folds,
            "up_rate": _number(self.up_rate),
            "threshold": self.threshold,
            "fee_bps": self.fee_bps,
            "trials": self.trials,
            "model": self.model.to_dict(),
            "baselines": [row.to_dict() for row in self.baselines],
            "best_baseline": self.best_baseline,
            "edge": self.edge,
            "reason": self.reason,
            "rule": self.rule,
            "var": None
            if self.var is None
            else {
                "breaches": self.var.breaches,
                "observations": self.var.observations,
                "breach_rate": _number(self.var.breach_rate),
                "expected_rate": self.var.expected_rate,
                "statistic": _number(self.var.statistic),
                "p_value": _number(self.var.p_value),
                "passes": self.var.passes,
            },
        }

    def table(self) -> str:
        """The model and the baselines as rows of plain text, for the CLI."""
        header = (
            "name",
            "hit rate [95% CI]",
            "Brier",
            "log loss",
            "DM p",
            "return",
            "max DD",
            "Sharpe",
            "DSR",
            "trades",
        )
        text = text_table([header, *(_cells(row) for row in (self.model, *self.baselines))])
        text.append("")
        text.append(
            f"{self.observations} out-of-sample points in {self.folds} folds, horizon "
            f"{self.horizon} bar(s), {_percent(self.up_rate)} up; fee {self.fee_bps:g} bp per "
            f"side; best baseline: {self.best_baseline} (lowest Brier)"
        )
        if self.var is not None:
            verdict = "passes" if self.var.passes else "fails"
            text.append(
                f"VaR {1 - self.var.expected_rate:.0%}: {self.var.breaches} breaches in "
                f"{self.var.observations} ({_percent(self.var.breach_rate)}), Kupiec p = "
                f"{_p(self.var.p_value)}: {verdict}"
            )
        text.append(f"edge: {'yes' if self.edge else 'no'}. {self.reason}")
        return "\n".join(text)


def _cells(row: Row) -> tuple[str, ...]:
    low, high = row.hit_interval
    s = row.strategy
    return (
        row.name,
        f"{_percent(row.hit_rate)} [{_percent(low)}, {_percent(high)}]",
        _fixed(row.brier, 4),
        _fixed(row.log_loss, 4),
        "-" if row.dm is None else _p(row.dm.p_value),
        _percent(s.total_return, signed=True),
        _percent(s.max_drawdown),
        _fixed(s.sharpe, 2),
        _fixed(row.deflated_sharpe, 2),
        str(s.trades),
    )


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity; null says "not defined" (a Sharpe with no variance)."""
    return float(value) if math.isfinite(value) else None


def _fixed(value: float, places: int) -> str:
    return f"{value:.{places}f}" if math.isfinite(value) else "-"


def _percent(value: float, *, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
