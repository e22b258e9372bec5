"""Shared by the signals tests: tiny models trained on the simulator's own random walk, the
markets' made-up histories, and a publisher that checks what a subscriber could read."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.market.markets import DEFAULT_MARKETS, Market
from backend.signals import history
from backend.signals.candles import Candles
from backend.signals.models import CandleSource, SignalRecord
from backend.signals.pipeline import train_and_save
from backend.signals.predictors.direction import DirectionConfig
from backend.signals.recorder import simulated_history
from backend.signals.service import Signals
from backend.signals.train import TrainConfig
from tests.helpers import (
    REDIS_PREFIX,
    RunningServer,
    Server,
    make_settings,
    temporary_database,
    with_backend,
)

# As tests/unit/test_signals_models.py: the plumbing, not the skill.
TINY = DirectionConfig(width=8, epochs=2, batch=64, seed=11)
HOUR = 3600
# 2026-01-01 00:00 UTC: the newest candle of every test history closes here.
T0 = 1_767_225_600
# Just after T0: the newest candles are fresh.
NOW = T0 + 60
HISTORY = 260  # over the 199 candles the models read, a few to spare
HORIZON = 4
MARKETS: tuple[Market, ...] = DEFAULT_MARKETS


def gbm(market: Market, count: int, *, end: int = T0, seed: int = 1) -> Candles:
    """``count`` hourly candles of the simulator's random walk ending just before ``end``."""
    rng = np.random.default_rng(seed)
    return simulated_history(market, float(market.start_price), end, count, HOUR, 7200, rng)


def train_registry(root: Path) -> Path:
    """Tiny models trained on 900 hours of GBM: the evaluation must find no edge."""
    candles = gbm(MARKETS[0], 900, seed=99)
    train_and_save(
        candles,
        market=MARKETS[0].symbol,
        interval="1h",
        root=root,
        config=TrainConfig(folds=2, direction=TINY),
    )
    return root


def with_edge(source: Path, target: Path) -> Path:
    """A copy of the registry whose direction model claims an edge at every horizon (the
    verdict is metadata; the weights' hash does not cover it)."""
    shutil.copytree(source, target)
    path = target / "direction" / "v0001" / "metadata.json"
    meta = json.loads(path.read_text())
    for verdict in meta["evaluation"].values():
        verdict["edge"] = True
        verdict["reason"] = "edge found: a test says so"
    path.write_text(json.dumps(meta))
    return target


@asynccontextmanager
async def own_server(
    backend: dict[str, Any], tmp: Path, name: str, **env: dict[str, Any]
) -> AsyncIterator[Server]:
    """A server with a database (and Redis keys) of its own on ``backend``: these tests store
    candles and signals that no other test's server may see, and run the books here."""
    if not backend:
        async with RunningServer(make_settings(tmp, **env)) as server:
            yield server
        return
    async with temporary_database() as url:
        mine = {"database": {"url": url}, "redis": {"key_prefix": f"{REDIS_PREFIX}-{name}"}}
        settings = make_settings(tmp, **with_backend(with_backend(backend, **mine), **env))
        async with RunningServer(settings) as server:
            yield server


def signals_for(root: Path, horizon: int = HORIZON) -> Signals:
    return Signals(MARKETS, "1h", horizon, root)


async def seed(
    db: Database, *, count: int = HISTORY, end: int = T0, markets: Sequence[Market] = MARKETS
) -> dict[str, Candles]:
    """Every market's history, stored as the feed's candles."""
    made = {m.symbol: gbm(m, count, end=end, seed=k) for k, m in enumerate(markets)}
    async with unit_of_work(db) as uow:
        for symbol, candles in made.items():
            await history.import_candles(uow, symbol, "1h", candles, CandleSource.FEED)
    return made


async def add_candle(db: Database, market: str, time: int, close: float) -> None:
    async with unit_of_work(db) as uow:
        await history.record_candle(uow, market, "1h", time, close, close, close, close, 1.0)


async def records(db: Database) -> list[SignalRecord]:
    async with db.reads() as session:
        result = await session.exec(SignalRecord.__table__.select())  # type: ignore[attr-defined, call-overload]
        return [SignalRecord(**row._asdict()) for row in result.all()]


@dataclass
class CheckingHub:
    """A publisher that, at each publish, reads the signal's row as a subscriber would."""

    db: Database
    events: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)

    async def publish(
        self, topic: str, kind: str, data: dict[str, Any], *, state: Any = None
    ) -> int:
        async with self.db.reads() as session:
            rows = await session.exec(
                SignalRecord.__table__.select().where(  # type: ignore[attr-defined]
                    SignalRecord.__table__.c.market == data["market"],  # type: ignore[attr-defined]
                    SignalRecord.__table__.c.time == data["time"],  # type: ignore[attr-defined]
                )
            )
            visible = rows.first() is not None
        self.events.append((topic, data, visible))
        return len(self.events)
