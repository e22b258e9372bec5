"""The served model's backtest, read from its registry metadata: what the record page shows
beside the live record, and the short verdict each signal carries.

The registry module loads torch (it knows the model classes), a couple of seconds and a few
hundred MB: it is imported only here, in a thread, and only by a process that shows a record.
A training run in progress (or failed) is told by a small status file in the registry folder,
so a process that does not train can say "model training".
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.signals.live import Bin, Brief

TRAINING_FILE = "training.json"
# The equity curves hold a point per test step (thousands): a chart on a phone needs no more.
EQUITY_POINTS = 200
# How long a read of the newest version is trusted before the folder is looked at again.
CACHE_SECONDS = 10.0
BUY_AND_HOLD = "buy-and-hold"


@dataclass(frozen=True, slots=True)
class TrainedOn:
    market: str
    interval: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Baseline:
    name: str
    hit_rate: float | None


@dataclass(frozen=True, slots=True)
class EquityPoint:
    i: int
    strategy: float | None
    buy_hold: float | None


@dataclass(frozen=True, slots=True)
class Backtest:
    """The direction model's walk-forward record at one horizon (``report.Report``'s data)."""

    model_version: int
    horizon: int
    trained_on: TrainedOn
    points: int
    hit_rate: float | None
    hit_rate_ci: tuple[float | None, float | None]
    baseline: Baseline
    brier: float | None
    baseline_brier: float | None
    dm_p: float | None
    edge: bool
    reason: str
    reliability: tuple[Bin, ...]
    equity: tuple[EquityPoint, ...]


def brief(metrics: dict[str, Any]) -> Brief:
    """The model's and the best baseline's hit rates from a stored ``Report.to_dict``."""
    best = _row(metrics, str(metrics.get("best_baseline", "")))
    return Brief(
        hit_rate=metrics.get("model", {}).get("hit_rate"),
        baseline=None if best is None else str(best["name"]),
        baseline_hit_rate=None if best is None else best.get("hit_rate"),
    )


def backtest(metadata: dict[str, Any], horizon: int) -> Backtest | None:
    """The record of the direction model whose registry ``metadata`` this is, or None when it
    was not evaluated at ``horizon``."""
    stored = metadata.get("evaluation", {}).get(str(horizon))
    if stored is None:
        return None
    metrics = stored["metrics"]
    model = metrics["model"]
    best_name = str(metrics["best_baseline"])
    best = _row(metrics, best_name) or {}
    hold = _row(metrics, BUY_AND_HOLD) or {}
    data = metadata["data"]
    low, high = model["hit_interval"]
    return Backtest(
        model_version=int(metadata["version"]),
        horizon=horizon,
        trained_on=TrainedOn(
            data["market"], data["interval"], int(data["first_time"]), int(data["last_time"])
        ),
        points=int(metrics["observations"]),
        hit_rate=model["hit_rate"],
        hit_rate_ci=(low, high),
        baseline=Baseline(best_name, best.get("hit_rate")),
        brier=model["brier"],
        baseline_brier=best.get("brier"),
        dm_p=None if model.get("dm") is None else model["dm"]["p_value"],
        edge=bool(stored["edge"]),
        reason=str(stored["reason"]),
        reliability=tuple(
            Bin(b["mean_predicted"], b["observed"], int(b["count"])) for b in model["reliability"]
        ),
        equity=_equity(model["strategy"]["equity"], hold.get("strategy", {}).get("equity", [])),
    )


def _row(metrics: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((row for row in metrics.get("baselines", []) if row["name"] == name), None)


def _equity(strategy: list[float | None], hold: list[float | None]) -> tuple[EquityPoint, ...]:
    if not strategy:
        return ()
    spread = np.linspace(0, len(strategy) - 1, min(len(strategy), EQUITY_POINTS))
    picks = [int(i) for i in np.unique(spread.round().astype(np.int64))]
    return tuple(EquityPoint(i, strategy[i], hold[i] if i < len(hold) else None) for i in picks)


def newest_versions(root: Path) -> tuple[int, int] | None:
    """The newest direction and volatility versions in the registry, or None while either
    kind has none.  Blocking (it may import torch): call it in a thread."""
    if not all((root / kind).is_dir() for kind in ("direction", "volatility")):
        return None  # no registry yet: no reason to load torch to say so
    from backend.signals import registry

    found = [registry.versions(root, kind) for kind in ("direction", "volatility")]
    if not all(found):
        return None
    return found[0][-1], found[1][-1]


def training_state(root: Path) -> str:
    """``training`` or ``failed`` while the status file says so, else ``untrained``."""
    try:
        state = json.loads((root / TRAINING_FILE).read_text()).get("state")
    except (OSError, ValueError, AttributeError):
        return "untrained"
    return state if state in ("training", "failed") else "untrained"


def mark_training(root: Path, state: str | None, error: str = "") -> None:
    """Write the status file (``training``, ``failed``), or remove it (None: done)."""
    path = root / TRAINING_FILE
    if state is None:
        path.unlink(missing_ok=True)
        return
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"state": state, "error": error, "at": int(time.time())}))


class Cards:
    """The served direction model's metadata, re-read only when a newer version appears."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checked = -CACHE_SECONDS
        self._version: int | None = None
        self._metadata: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any] | None:
        """The newest direction model's metadata, or None while the registry is empty."""
        async with self._lock:
            if time.monotonic() - self._checked >= CACHE_SECONDS:
                self._version, self._metadata = await asyncio.to_thread(
                    self._read, self._version, self._metadata
                )
                self._checked = time.monotonic()
            return self._metadata

    def _read(
        self, version: int | None, metadata: dict[str, Any] | None
    ) -> tuple[int | None, dict[str, Any] | None]:
        if not (self.root / "direction").is_dir():
            return None, None
        from backend.signals import registry

        known = registry.versions(self.root, "direction")
        if not known:
            return None, None
        if known[-1] == version:
            return version, metadata
        try:
            entry = registry.entry(self.root, "direction", known[-1])
        except registry.ModelRefused:
            return None, None
        return entry.version, entry.metadata
