"""The signals worker: as each candle closes, every market's signal in one batch, stored, then
published on ``signals:<MARKET>`` after the commit, and the live record settled.

It runs in the process elected to run the market feed (woken by the feed's candle recorder as
each candle closes) or on its own as ``simplrefq worker signals`` (looking every
``SIGNALS_POLL_SECONDS``).  The models come from the registry; with an empty one it may train
the default models once, in a thread, and serves nothing until they are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from backend.db.engine import Database
from backend.db.uow import AfterCommit, UnitOfWork, unit_of_work
from backend.market.feed import Publisher
from backend.notify import preferences
from backend.notify.service import Notice, enqueue_many
from backend.signals import card, live
from backend.signals.models import SignalRecord
from backend.signals.service import Signals, signal_view

if TYPE_CHECKING:
    from backend.signals.scorer import Scorer

log = structlog.get_logger(__name__)

TOPIC = "signals:{market}"
NOTIFY_TOPIC = "signals"
# The history the default models are trained on when the registry is empty (shipped with the
# code: backend/signals/data/).
TRAIN_MARKET = "BTC-USD"


def topic(market: str) -> str:
    return TOPIC.format(market=market)


class SignalsWorker:
    def __init__(
        self,
        db: Database,
        hub: Publisher,
        signals: Signals,
        *,
        train: bool = False,
        poll_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.hub = hub
        self.signals = signals
        self.train = train
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.scorer: Scorer | None = None
        self.brief = live.Brief(None, None, None)
        self._loaded: tuple[int, int] | None = None
        self._tried_training = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A candle closed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        log.info("signals_worker_started", markets=list(self.signals.markets))
        try:
            while True:
                try:
                    await self.refresh_models()
                    await self.run_once()
                except Exception:
                    log.exception("signals_worker_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()
        finally:
            log.info("signals_worker_stopped")

    async def refresh_models(self) -> Scorer | None:
        """Load the newest models when the registry has newer ones than those served; with an
        empty registry, train once if allowed."""
        root = self.signals.models_dir
        newest = await asyncio.to_thread(card.newest_versions, root)
        if newest is None and self.train and not self._tried_training:
            self._tried_training = True
            await self._train()
            newest = await asyncio.to_thread(card.newest_versions, root)
        if newest is None or newest == self._loaded:
            return self.scorer
        self._loaded = newest
        self.use(await asyncio.to_thread(_load, root))
        return self.scorer

    def use(self, scorer: Scorer | None) -> None:
        """Serve ``scorer`` if it fits the configured interval and horizon (else nothing)."""
        self.scorer = None
        if scorer is None:
            return
        horizon, interval = self.signals.horizon, self.signals.interval
        if scorer.interval != interval or horizon not in scorer.horizons:
            log.error(
                "signals_model_does_not_fit",
                model_interval=scorer.interval,
                model_horizons=list(scorer.horizons),
                interval=interval,
                horizon=horizon,
            )
            return
        self.scorer = scorer
        self.brief = card.brief(scorer.direction_entry.verdict(horizon).metrics)
        log.info(
            "signals_models_loaded",
            direction=scorer.direction_entry.version,
            volatility=scorer.risk_entry.version,
            edge=scorer.direction_entry.verdict(horizon).edge,
        )

    async def _train(self) -> None:
        root, interval = self.signals.models_dir, self.signals.interval
        log.info("signals_training_started", market=TRAIN_MARKET, interval=interval, root=str(root))
        card.mark_training(root, "training")
        started = time.monotonic()
        try:
            await asyncio.to_thread(_train, root, interval)
        except Exception as exc:
            card.mark_training(root, "failed", repr(exc))
            log.exception("signals_training_failed")
            return
        card.mark_training(root, None)
        log.info("signals_training_done", seconds=round(time.monotonic() - started, 1))

    async def run_once(self, now: float | None = None) -> list[SignalRecord]:
        """Score every market with a newly closed candle (one batch), store and queue their
        notifications in one transaction, publish after it commits, then settle the signals
        whose horizon has passed.  Returns the signals stored."""
        scorer = self.scorer
        stored: list[SignalRecord] = []
        interval = self.signals.interval
        if scorer is not None:
            async with self.db.reads() as session:
                histories = await live.due(
                    session,
                    list(self.signals.markets),
                    interval,
                    self.signals.horizon,
                    scorer.needed,
                    self.clock() if now is None else now,
                )
            if histories:
                batch = {market: h.candles for market, h in histories.items()}
                signals = await asyncio.to_thread(scorer.score, batch, horizon=self.signals.horizon)
                async with unit_of_work(self.db) as uow:
                    stored = await live.store(uow, signals.values(), histories, self.brief)
                    await self._notify(uow, [s for s in stored if s.published])
                    if stored:
                        uow.after_commit(self._publisher(stored))
                log.info("signals_stored", markets=[s.market for s in stored])
        async with unit_of_work(self.db) as uow:
            settled = await live.settle(uow, interval)
        if settled:
            log.info("signals_settled", count=settled)
        return stored

    async def _notify(self, uow: UnitOfWork, published: Sequence[SignalRecord]) -> None:
        """Queue a message per published signal to every user who opted in, in the same
        transaction: one per user and candle, whatever retries happen."""
        if not published:
            return
        users = await preferences.subscribers(uow.session, NOTIFY_TOPIC)
        notices = []
        for record in published:
            view = signal_view(record)
            payload = {
                "market": view.market,
                "direction": view.direction,
                "probability_up": view.probability_up,
                "horizon_hours": f"{view.horizon_hours:g}",
                "var95": view.var95,
                "time": view.time,
            }
            for user_id in users:
                key = f"signal:{view.market}:{view.time}:{user_id}"
                notices.append(Notice(user_id, "signal", payload, key))
        await enqueue_many(uow, notices)

    def _publisher(self, stored: Sequence[SignalRecord]) -> AfterCommit:
        views = [signal_view(record) for record in stored]

        async def publish() -> None:
            for view in views:
                await self.hub.publish(topic(view.market), "event", view.data())

        return publish


def _load(root: Path) -> Scorer | None:
    """The newest models, or None (logged) when the registry refuses them."""
    from backend.signals.registry import ModelRefused
    from backend.signals.scorer import Scorer

    try:
        return Scorer.load(root)
    except ModelRefused as exc:
        log.error("signals_models_refused", reason=exc.message)
        return None


def _train(root: Path, interval: str) -> None:
    """The default models on the bundled history (blocking: minutes of CPU)."""
    from backend.signals import pipeline

    def progress(message: str, done: int) -> None:
        if done:
            log.info("signals_training", step=message)

    candles = pipeline.bundled_history(TRAIN_MARKET, interval)
    pipeline.train_and_save(
        candles, market=TRAIN_MARKET, interval=interval, root=root, tracker=progress
    )
