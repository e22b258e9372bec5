"""The signals worker: one batch per close, stored then published after the commit, the live
record settled as horizons pass, notifications only to those who opted in; on the project's
own random walk the evaluation finds no edge.  SQLite and PostgreSQL alike."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.i18n import Translator
from backend.market.markets import DEFAULT_MARKETS
from backend.notify import preferences
from backend.notify.messages import render
from backend.notify.models import Notification
from backend.signals import card, live
from backend.signals import worker as worker_module
from backend.signals.candles import Candles
from backend.signals.models import CandleSource, SignalCandle
from backend.signals.recorder import CandleRecorder, backfill
from backend.signals.scorer import Scorer, Signal
from backend.signals.worker import SignalsWorker
from tests.helpers import users
from tests.signals_helpers import (
    HORIZON,
    HOUR,
    MARKETS,
    NOW,
    T0,
    CheckingHub,
    add_candle,
    records,
    seed,
    signals_for,
    train_registry,
    with_edge,
)

SIGNAL_FIELDS = {
    "market",
    "interval",
    "time",
    "horizon",
    "horizon_hours",
    "direction",
    "probability_up",
    "published",
    "reason",
    "volatility",
    "var95",
    "model_version",
    "patterns",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def edge_registry(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_edge(registry, tmp_path_factory.mktemp("edge") / "models")


async def worker_for(db: Database, root: Path, hub: Any = None) -> SignalsWorker:
    worker = SignalsWorker(db, hub or CheckingHub(db), signals_for(root))
    assert await worker.refresh_models() is not None
    return worker


async def test_the_simulators_random_walk_shows_no_edge(db: Database, registry: Path) -> None:
    scorer = Scorer.load(registry)
    for horizon in scorer.horizons:
        verdict = scorer.direction_entry.verdict(horizon)
        assert not verdict.edge and verdict.reason.startswith("no edge found")
        # Not for want of data: the rule had its 100 points and more to judge.
        assert verdict.metrics["observations"] >= 100
    await seed(db)
    worker = await worker_for(db, registry)
    stored = await worker.run_once(now=NOW)
    assert len(stored) == len(MARKETS)
    assert all(not s.published and s.reason.startswith("no edge found") for s in stored)
    assert all(s.backtest_hit_rate is not None and s.baseline for s in stored)


async def test_each_close_is_stored_then_published_after_the_commit(
    db: Database, registry: Path
) -> None:
    await seed(db)
    hub = CheckingHub(db)
    worker = await worker_for(db, registry, hub)
    stored = await worker.run_once(now=NOW)
    assert {s.market for s in stored} == {m.symbol for m in MARKETS}
    assert {s.time for s in stored} == {T0 - HOUR}
    assert [topic for topic, _, _ in hub.events] == [f"signals:{m.symbol}" for m in MARKETS]
    # Every subscriber could already read the row its event announced.
    assert all(visible for _, _, visible in hub.events)
    for _, data, _ in hub.events:
        assert set(data) >= SIGNAL_FIELDS
        assert data["horizon"] == HORIZON and data["horizon_hours"] == 4
        assert data["direction"] == ("up" if data["probability_up"] > 0.5 else "down")
        assert data["source"] == CandleSource.FEED.value
    # The same candle again: nothing new is stored or published.
    assert await worker.run_once(now=NOW) == []
    assert len(hub.events) == len(MARKETS)


async def test_a_failed_commit_publishes_nothing(
    db: Database, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(db)
    hub = CheckingHub(db)
    worker = await worker_for(db, registry, hub)

    async def refused(self: AsyncSession) -> None:
        raise ConnectionError("the database went away at commit")

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", refused)
        with pytest.raises(ConnectionError):
            await worker.run_once(now=NOW)
    assert hub.events == [] and await records(db) == []
    # Once the database is back, the same close is stored and published.
    assert len(await worker.run_once(now=NOW)) == len(MARKETS)
    assert len(hub.events) == len(MARKETS)


async def test_markets_are_scored_in_one_batch(db: Database, registry: Path) -> None:
    await seed(db)
    worker = await worker_for(db, registry)
    scorer = worker.scorer
    assert scorer is not None
    calls: list[list[str]] = []
    real = scorer.score

    def spy(batch: Mapping[str, Candles], *, horizon: int | None = None) -> dict[str, Signal]:
        calls.append(sorted(batch))
        assert all(len(candles) == scorer.needed for candles in batch.values())
        return real(batch, horizon=horizon)

    scorer.score = spy  # type: ignore[method-assign]
    await worker.run_once(now=NOW)
    assert calls == [sorted(m.symbol for m in MARKETS)]


async def test_stale_or_unclosed_candles_are_not_scored(db: Database, registry: Path) -> None:
    await seed(db)
    worker = await worker_for(db, registry)
    assert await worker.run_once(now=T0 + 2 * HOUR) == []  # the feed stopped an hour ago
    assert await worker.run_once(now=T0 - 1) == []  # the newest candle is still open
    assert len(await worker.run_once(now=NOW)) == len(MARKETS)


async def test_the_live_record_is_settled_when_the_horizon_passes(
    db: Database, registry: Path
) -> None:
    made = await seed(db)
    worker = await worker_for(db, registry)
    stored = {s.market: s for s in await worker.run_once(now=NOW)}
    assert all(r.scored_at is None for r in await records(db))  # nothing has passed yet
    ton, eth, bnb = (m.symbol for m in MARKETS)
    # TON rises over the horizon, ETH falls, BNB's later candle never comes (the feed was
    # down) though newer ones do.
    moves = {ton: 1.01, eth: 0.99}
    for market, factor in moves.items():
        close = float(made[market].close[-1])
        for k in range(HORIZON - 1):
            await add_candle(db, market, T0 + k * HOUR, close)
        await add_candle(db, market, T0 + (HORIZON - 1) * HOUR, close * factor)
    await add_candle(db, bnb, T0 + HORIZON * HOUR, float(made[bnb].close[-1]))
    await worker.run_once(now=T0 + HORIZON * HOUR + 60)
    settled = {r.market: r for r in await records(db) if r.time == T0 - HOUR}
    for market, factor in moves.items():
        record = settled[market]
        assert record.outcome_up is (factor > 1)
        assert record.hit is ((stored[market].direction == "up") is (factor > 1))
        assert record.scored_at is not None
    assert settled[bnb].scored_at is not None
    assert settled[bnb].outcome_up is None and settled[bnb].hit is None
    async with db.reads() as session:
        record = await live.live_record(session, ton, "1h", HORIZON)
        none = await live.live_record(session, bnb, "1h", HORIZON)
    assert record.scored == 1 and record.hits == int(bool(settled[ton].hit))
    expected = stored[ton].probability_up - 1.0
    assert record.brier == pytest.approx(expected**2)
    assert record.hit_rate_ci is not None and record.reliability[0].count == 1
    assert (none.scored, none.hit_rate, none.brier) == (0, None, None)


async def test_only_opted_in_users_are_told_and_only_of_published_signals(
    db: Database, registry: Path, edge_registry: Path
) -> None:
    await seed(db)
    keen, default, muted = await users(db, 3)
    async with unit_of_work(db) as uow:
        await preferences.change(uow, keen, topics={"signals": True})
        await preferences.change(uow, muted, topics={"trades": False})
    async with db.reads() as session:
        assert await preferences.subscribers(session, "signals") == [keen]
        assert not (await preferences.load(session, default)).wants("signal")
    # No edge: nothing is sent, even to those who asked.
    plain = await worker_for(db, registry)
    assert len(await plain.run_once(now=NOW)) == len(MARKETS)
    assert await outbox(db) == []

    edge = await worker_for(db, edge_registry)
    await add_more(db)
    stored = await edge.run_once(now=NOW + HOUR)
    assert stored and all(s.published for s in stored)
    rows = await outbox(db)
    assert {row.user_id for row in rows} == {keen}
    assert sorted(row.payload["market"] for row in rows) == sorted(m.symbol for m in MARKETS)
    assert all(row.kind == "signal" and row.dedupe_key.startswith("signal:") for row in rows)
    text = render(rows[0].kind, rows[0].payload, Translator("en"))
    assert f"<b>{rows[0].payload['market']}</b>" in text and "over the next 4 h" in text
    # A retried cause queues nothing new.
    async with unit_of_work(db) as uow:
        await edge._notify(uow, stored)
    assert len(await outbox(db)) == len(rows)


async def outbox(db: Database) -> list[Notification]:
    async with db.reads() as session:
        return list((await session.exec(select(Notification))).all())


async def add_more(db: Database) -> None:
    """Every market's next hour, closed."""
    async with db.reads() as session:
        last = {
            row.market: row
            for row in (
                await session.exec(select(SignalCandle).where(SignalCandle.time == T0 - HOUR))
            ).all()
        }
    for market, row in last.items():
        await add_candle(db, market, T0, row.close)


async def test_the_recorder_stores_each_closed_hour_but_the_partial_first(db: Database) -> None:
    now = [T0 + 1800.0]  # started half way into an hour
    woken: list[int] = []
    recorder = CandleRecorder(
        db, DEFAULT_MARKETS, "1h", on_closed=lambda: woken.append(1), clock=lambda: now[0]
    )
    ton = DEFAULT_MARKETS[0]
    ticks = [52_000, 53_000, 51_000, 52_500]  # TON-USDT in 0.0001 USDT
    for moment, price in zip((1800, 3600, 4000, 5000, 7200), (*ticks, 52_600), strict=True):
        now[0] = T0 + moment
        await recorder.on_prices({ton.symbol: price, "XYZ-USDT": 1})
    async with db.reads() as session:
        rows = (await session.exec(select(SignalCandle))).all()
    # The half hour from T0 + 1800 is left out; the full hour from T0 + 3600 is stored.
    assert [(r.market, r.time, r.source) for r in rows] == [(ton.symbol, T0 + HOUR, "feed")]
    (row,) = rows
    assert (row.open, row.high, row.low, row.close) == pytest.approx((5.3, 5.3, 5.1, 5.25))
    assert row.volume == 3 and woken == [1]


async def test_backfill_makes_up_simulated_history_once(db: Database, registry: Path) -> None:
    added = await backfill(db, DEFAULT_MARKETS, "1h", 240, volume=7200, now=NOW, seed=5)
    assert added == {m.symbol: 240 for m in DEFAULT_MARKETS}
    assert await backfill(db, DEFAULT_MARKETS, "1h", 240, volume=7200, now=NOW) == {}
    async with db.reads() as session:
        rows = (
            await session.exec(
                select(SignalCandle)
                .where(SignalCandle.market == "TON-USDT")
                .order_by(SignalCandle.time)  # type: ignore[arg-type]
            )
        ).all()
    assert {r.source for r in rows} == {"simulator"}
    assert rows[-1].time == T0 - HOUR and rows[-1].close == pytest.approx(5.2)  # the start price
    assert all(r.time % HOUR == 0 and r.low <= min(r.open, r.close) for r in rows)
    # Signals made on it say so.
    worker = await worker_for(db, registry)
    stored = await worker.run_once(now=NOW)
    assert stored and {s.source for s in stored} == {"simulator"}


async def test_training_state_is_told_by_a_file(tmp_path: Path) -> None:
    assert card.training_state(tmp_path) == "untrained"
    card.mark_training(tmp_path, "training")
    assert card.training_state(tmp_path) == "training"
    card.mark_training(tmp_path, "failed", "boom")
    assert card.training_state(tmp_path) == "failed"
    card.mark_training(tmp_path, None)
    assert card.training_state(tmp_path) == "untrained"
    assert card.newest_versions(tmp_path) is None


async def test_an_empty_registry_is_trained_once(
    tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training at start (stood in for by copying the tiny models): "training" while it
    runs, then served; a failure is told as "failed" and not retried in a loop."""
    root = tmp_path / "models"
    seen: list[str] = []

    def fake_train(into: Path, interval: str) -> None:
        seen.append(card.training_state(into))
        shutil.copytree(registry, into, dirs_exist_ok=True)

    monkeypatch.setattr(worker_module, "_train", fake_train)
    worker = SignalsWorker(None, CheckingHub(None), signals_for(root), train=True)  # type: ignore[arg-type]
    assert await worker.refresh_models() is not None
    assert seen == ["training"] and card.training_state(root) == "untrained"

    broken = tmp_path / "broken"

    def failing_train(into: Path, interval: str) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(worker_module, "_train", failing_train)
    worker = SignalsWorker(None, CheckingHub(None), signals_for(broken), train=True)  # type: ignore[arg-type]
    assert await worker.refresh_models() is None
    assert card.training_state(broken) == "failed"
    monkeypatch.setattr(worker_module, "_train", fake_train)
    assert await worker.refresh_models() is None  # once per process: no loop of retries
