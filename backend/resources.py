"""The process-wide resources the app opens at start-up and closes at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiogram import Bot
from redis.asyncio import BlockingConnectionPool, Redis

from backend.alerts.watcher import AlertWatcher
from backend.auth.ratelimit import RateLimiter
from backend.auth.service import prune_sessions
from backend.config import Environment, Settings
from backend.db.engine import Database
from backend.hub.backends.memory import MemoryBackend
from backend.hub.backends.redis import RedisBackend
from backend.hub.hub import Hub
from backend.ledger.events import balance_events
from backend.ledger.service import Ledger, now_micros
from backend.market.feed import MarketFeed
from backend.market.leader import run_as_leader
from backend.notify.limiter import limiter_for
from backend.notify.worker import NotificationWorker
from backend.points.feed import LeaderboardFeed
from backend.points.leaderboard import Leaderboard, LedgerLeaderboard, RedisLeaderboard
from backend.points.service import Points
from backend.trading.bus import TradingBus
from backend.trading.maker import MarketMaker
from backend.trading.service import Trading
from backend.trading.volume import VolumePoints

log = structlog.get_logger(__name__)

# Per process: the pub/sub reader holds one; requests borrow the rest for a round trip each.
REDIS_CONNECTIONS = 50
REDIS_WAIT_SECONDS = 5.0
# Background tasks get this long to stop at shutdown before the process goes on without them.
STOP_SECONDS = 5.0
# Pending transfers (referral rewards, order reservations) expire in days or hours; sweeping
# each minute keeps an expired reservation from holding funds noticeably past its time.
EXPIRY_SWEEP_SECONDS = 60.0
EXPIRY_LOOKBACK_MICROS = 3600 * 1_000_000
# Rebuilding the books replays at most TRADING_SNAPSHOT_EVERY commands per market: seconds.
MARKETS_START_SECONDS = 60.0
# Dead sessions (expired, and revoked ones once expired) are only kept for the lookup that
# refuses them, which the token's own expiry already does: an hourly sweep keeps the table to
# about a day of sign-ins.
SESSION_PRUNE_SECONDS = 3600.0


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
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _markets_ready: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        redis = None
        if settings.redis.url:
            # A blocking pool waits for a free connection instead of failing a request when a
            # burst (thousands of WebSocket subscribes) wants more than it holds.
            pool = BlockingConnectionPool.from_url(
                settings.redis.url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT_SECONDS
            )
            redis = Redis.from_pool(pool)
        backend = RedisBackend(redis, settings.redis.key_prefix) if redis else MemoryBackend()
        db = Database.connect(settings)
        hub = Hub(backend)
        leaderboard: Leaderboard = (
            RedisLeaderboard(redis, settings.redis.key_prefix) if redis else LedgerLeaderboard(db)
        )
        feed = LeaderboardFeed(leaderboard, db, hub)
        ledger = Ledger()
        production = settings.app.env is Environment.PRODUCTION
        trading = Trading(db, ledger, hub, settings.trading, demo=not production)
        if redis is not None and settings.trading.enabled:
            # The processes that do not run the books forward their orders to the one that does.
            trading.bus = TradingBus(trading, redis, settings.redis.url, settings.redis.key_prefix)
        for listener in (
            balance_events(hub, trading.held),
            leaderboard.on_balances,
            feed.on_balances,
        ):
            ledger.listen(listener)
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
        )

    async def start(self) -> None:
        await self.hub.start()
        if self.trading.bus is not None:
            self._spawn(self.trading.bus.listen(), "trading-replies")
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
        if isinstance(self.leaderboard, RedisLeaderboard):
            self._spawn(self._restore_leaderboard(self.leaderboard), "leaderboard-restore")
        self._spawn(self._expire_pending(), "ledger-expiry")
        self._spawn(self._prune_sessions(), "session-prune")

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
                    await self.trading.start(spawn)
                    spawn(VolumePoints(self.db, self.points, self.trading.silent).run(), "points")
                    # The maker's funds are minted: never in production.
                    production = self.settings.app.env is Environment.PRODUCTION
                    if self.settings.trading.market_maker and not production:
                        spawn(MarketMaker(self.db, self.trading).run(), "market-maker")
                self._markets_ready.set()
                if self.settings.market.feed == "simulator":
                    # Alerts are watched where the prices are made, from the feed's ticks.
                    watcher = AlertWatcher(self.db, self.hub)
                    listeners = [watcher.on_prices]
                    if trading:
                        listeners.append(self.trading.on_reference_prices)
                    feed = MarketFeed(
                        self.hub,
                        interval=self.settings.market.interval_seconds,
                        listeners=listeners,
                        candles=not trading,
                    )
                    spawn(feed.run(), "market-feed")
        finally:
            self.trading.running = False

    def start_notifier(self, bot: Bot) -> None:
        """Deliver the outbox from this process (several processes share the Redis limits)."""
        limiter = limiter_for(
            self.redis,
            self.settings.redis.key_prefix,
            self.settings.notify.per_second,
            self.settings.notify.per_chat_per_second,
        )
        worker = NotificationWorker(self.db, bot, limiter, self.settings)
        self._spawn(worker.run(), "notify-worker")

    async def _restore_leaderboard(self, board: RedisLeaderboard) -> None:
        """A Redis that lost its data gets the board back from the ledger (the rebuild is
        version-checked, so processes starting together do no harm)."""
        try:
            if await board.missing():
                log.info("leaderboard_rebuilt", entries=await board.rebuild(self.db))
        except Exception:
            log.exception("leaderboard_rebuild_failed")

    async def _expire_pending(self) -> None:
        # The first sweep looks at everything; later ones only at the last hour, so the sweep
        # does not re-read every reservation that ever expired (a missed sweep is covered by
        # the overlap, a long outage by the full sweep at the next start).
        since = 0
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)
            started = now_micros()
            try:
                while await self.ledger.expire(self.db, since=since):
                    pass
            except Exception:
                # A database blip skips a sweep; the next one picks up what this one missed.
                log.exception("ledger_expiry_failed")
                continue
            since = started - EXPIRY_LOOKBACK_MICROS

    async def _prune_sessions(self) -> None:
        while True:
            await asyncio.sleep(SESSION_PRUNE_SECONDS)
            try:
                async with self.db.sessions() as session:
                    await prune_sessions(session, before=datetime.now(UTC))
                    await session.commit()
            except Exception:
                log.exception("session_prune_failed")  # the next sweep catches up

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            if stuck:
                log.error("tasks_did_not_stop", tasks=[task.get_name() for task in stuck])
        await self.hub.close()
        if self.trading.bus is not None:
            await self.trading.bus.close()
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()
