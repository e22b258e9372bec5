"""The process-wide resources the app opens at start-up and closes at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiogram import Bot
from redis.asyncio import Redis

from backend.alerts.watcher import AlertWatcher
from backend.auth.ratelimit import RateLimiter
from backend.auth.service import prune_forever
from backend.chains.deposits import watch_chains
from backend.chains.payouts import pay_chains
from backend.chains.withdrawals import Withdrawals
from backend.config import Settings
from backend.db.engine import Database
from backend.db.redis import connect_redis
from backend.hub.backends import backend_for
from backend.hub.hub import Hub
from backend.ledger.events import balance_events
from backend.ledger.expiry import expire_forever
from backend.ledger.service import Ledger
from backend.market.feed import MarketFeed
from backend.market.leader import run_as_leader
from backend.market.markets import DEFAULT_MARKETS
from backend.notify.worker import notifier_for
from backend.points.feed import LeaderboardFeed
from backend.points.leaderboard import Leaderboard, leaderboard_for
from backend.points.service import Points
from backend.points.volume import VolumePoints
from backend.signals.history import interval_seconds
from backend.signals.recorder import CandleRecorder, backfill
from backend.signals.service import Signals
from backend.signals.worker import SignalsWorker
from backend.trading.bus import TradingBus
from backend.trading.maker import MarketMaker
from backend.trading.router import TradingRouter
from backend.trading.service import Trading

log = structlog.get_logger(__name__)

# Background tasks get this long to stop at shutdown before the process goes on without them.
STOP_SECONDS = 5.0
# Rebuilding the books replays at most TRADING_SNAPSHOT_EVERY commands per market: seconds.
MARKETS_START_SECONDS = 60.0


@dataclass(slots=True)
class Resources:
    settings: Settings
    db: Database
    redis: Redis | None
    limiter: RateLimiter
    hub: Hub
    ledger: Ledger
    points: Points
    leaderboard: Leaderboard
    leaderboard_feed: LeaderboardFeed
    trading: Trading
    trading_router: TradingRouter
    """Where trading requests run: the books here, or the process that runs them."""
    signals: Signals
    withdrawals: Withdrawals
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _markets_ready: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        redis = connect_redis(settings)
        db = Database.connect(settings)
        hub = Hub(backend_for(redis, settings.redis.key_prefix))
        leaderboard = leaderboard_for(db, redis, settings.redis.key_prefix)
        feed = LeaderboardFeed(leaderboard, db, hub)
        ledger = Ledger()
        trading = Trading(db, ledger, hub, settings.trading, demo=settings.demo_funds)
        bus = None
        if redis is not None and settings.trading.enabled:
            # The processes that do not run the books forward their orders to the one that does.
            bus = TradingBus(
                redis,
                settings.redis.url,
                settings.redis.key_prefix,
                timeout=settings.trading.order_timeout_seconds,
            )
        for listener in (
            balance_events(hub, trading.held),
            leaderboard.on_balances,
            feed.on_balances,
        ):
            ledger.listen(listener)
        router = TradingRouter(trading, bus)
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            limiter=RateLimiter.from_settings(settings, redis),
            hub=hub,
            ledger=ledger,
            points=Points(ledger, settings.points, hub),
            leaderboard=leaderboard,
            leaderboard_feed=feed,
            trading=trading,
            trading_router=router,
            signals=Signals.from_settings(settings),
            withdrawals=Withdrawals(db, router, hub, settings.chains),
        )

    async def start(self) -> None:
        await self.hub.start()
        self.trading_router.listen(self._spawn)
        if self.settings.market.feed == "simulator" or self.settings.trading.enabled:
            markets = self._spawn(self._markets(), "markets")
            if self.redis is None:
                # The only process runs the books: serve once they are rebuilt (or failed to
                # be), so the first requests after a start are not answered "retry".
                ready = asyncio.ensure_future(self._markets_ready.wait())
                await asyncio.wait(
                    {ready, markets}, timeout=MARKETS_START_SECONDS, return_when="FIRST_COMPLETED"
                )
                ready.cancel()
                if markets.done():
                    markets.result()
        self._spawn(self.leaderboard_feed.run(), "leaderboard-feed")
        self._spawn(self.leaderboard.restore(self.db), "leaderboard-restore")
        self._spawn(expire_forever(self.ledger, self.db), "ledger-expiry")
        self._spawn(prune_forever(self.db), "session-prune")

    def _spawn(self, job: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Background work owned here, cancelled at shutdown."""
        task = asyncio.create_task(job, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _markets(self) -> None:
        """The price feed and the order books run in one process: the only one, or the one
        elected in Redis (another takes over, from the database, if it goes)."""
        if self.redis is None:
            await self._run_markets()
        else:
            key = f"{self.settings.redis.key_prefix}:market:feed-leader"
            await run_as_leader(self.redis, key, self._run_markets)

    async def _run_markets(self) -> None:
        trading = self.settings.trading.enabled
        try:
            async with asyncio.TaskGroup() as group:

                def spawn(job: Coroutine[Any, Any, None], name: str) -> None:
                    group.create_task(job, name=name)

                if trading:
                    await self.trading_router.start(spawn)
                    makers = self.trading.maker_user_ids
                    spawn(VolumePoints(self.db, self.points, makers).run(), "points")
                    # The maker's funds are minted: only where demo funds are.
                    if self.settings.trading.market_maker and self.trading.demo:
                        spawn(MarketMaker(self.db, self.trading).run(), "market-maker")
                    # Deposits are credited through the books' writers: where the books run.
                    chains = self.settings.chains
                    spawn(
                        watch_chains(self.db, self.ledger, self.trading, chains, hub=self.hub),
                        "deposits",
                    )
                    spawn(
                        pay_chains(self.db, self.ledger, self.trading, self.hub, chains),
                        "withdrawals",
                    )
                self._markets_ready.set()
                worker = self._signals_worker()
                simulator = self.settings.market.feed == "simulator"
                if worker is not None or (simulator and self.settings.signals.enabled):
                    spawn(self._run_signals(worker, simulator), "signals")
                if simulator:
                    # Alerts are watched where the prices are made, from the feed's ticks.
                    watcher = AlertWatcher(self.db, self.hub)
                    listeners = [watcher.on_prices]
                    if trading:
                        listeners.append(self.trading.on_reference_prices)
                    if self.settings.signals.enabled:
                        # The signals' candles too, each stored as it closes.
                        recorder = CandleRecorder(
                            self.db,
                            DEFAULT_MARKETS,
                            self.settings.signals.interval,
                            on_closed=worker.wake if worker is not None else None,
                        )
                        listeners.append(recorder.on_prices)
                    feed = MarketFeed(
                        self.hub,
                        interval=self.settings.market.interval_seconds,
                        listeners=listeners,
                        candles=not trading,
                    )
                    spawn(feed.run(), "market-feed")
        finally:
            self.trading_router.stop()

    def _signals_worker(self) -> SignalsWorker | None:
        """The signals worker of this process, if it scores here (``SIGNALS_IN_APP``)."""
        signals = self.settings.signals
        if not (signals.enabled and signals.in_app):
            return None
        return SignalsWorker(
            self.db,
            self.hub,
            self.signals,
            train=self.settings.train_signal_models,
            poll_seconds=signals.poll_seconds,
        )

    async def _run_signals(self, worker: SignalsWorker | None, simulator: bool) -> None:
        """The demo's made-up history first (simulator markets only), then the worker."""
        settings = self.settings
        if simulator and settings.signals.enabled and settings.signals.backfill_hours:
            try:
                await backfill(
                    self.db,
                    DEFAULT_MARKETS,
                    settings.signals.interval,
                    settings.signals.backfill_hours,
                    # The feed's candles count its price updates as their volume.
                    volume=round(
                        interval_seconds(settings.signals.interval)
                        / settings.market.interval_seconds
                    ),
                )
            except Exception:
                log.exception("signals_backfill_failed")
        if worker is not None:
            await worker.run()

    def start_notifier(self, bot: Bot) -> None:
        """Deliver the outbox from this process (several processes share the Redis limits)."""
        worker = notifier_for(self.db, bot, self.redis, self.settings)
        self._spawn(worker.run(), "notify-worker")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            if stuck:
                log.error("tasks_did_not_stop", tasks=[task.get_name() for task in stuck])
        await self.hub.close()
        await self.withdrawals.close()
        await self.trading_router.close()
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()
