"""Rate limits per user and per client address, kept in Redis (in memory when embedded).

The sliding-window-counter strategy of the ``limits`` library: two counters per key, atomic in
Redis, a smooth limit with no burst at window edges.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from redis.asyncio import Redis

from backend.config import Settings
from backend.errors import RateLimited

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Route opt: the limit to apply instead of the write limits (e.g. "signin").
RATE_LIMIT_OPT = "rate_limit"


class RateLimiter:
    def __init__(self, storage: Storage, settings: Settings) -> None:
        self._storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self.enabled = settings.ratelimit.enabled
        self.limits: dict[str, RateLimitItem] = {
            "signin_ip": parse(settings.ratelimit.signin_per_ip),
            "signin_user": parse(settings.ratelimit.signin_per_user),
            "write_user": parse(settings.ratelimit.write_per_user),
            "write_ip": parse(settings.ratelimit.write_per_ip),
        }

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis | None) -> RateLimiter:
        storage: Storage
        if redis is not None:
            # Shares the process's connection pool instead of opening one of its own.
            storage = RedisStorage(
                "async+" + settings.redis.url,
                implementation="redispy",
                key_prefix=f"{settings.redis.key_prefix}:rl",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # passed to redis-py
            )
        else:
            storage = MemoryStorage()
        return cls(storage, settings)

    async def hit(self, name: str, identifier: str) -> None:
        """Count one request against limit ``name``; raise RateLimited when it is spent."""
        if not self.enabled:
            return
        item = self.limits[name]
        if await self._strategy.hit(item, name, identifier):
            return
        stats = await self._strategy.get_window_stats(item, name, identifier)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"too many requests; retry in {retry_after} s", retry_after=retry_after)

    async def reset(self) -> None:
        await self._storage.reset()

    async def close(self) -> None:
        # The in-memory storage runs an expiry task of its own; stop it with the app.
        if isinstance(self._storage, MemoryStorage) and self._storage.timer is not None:
            self._storage.timer.cancel()


@dataclass(frozen=True, slots=True)
class RateLimitGuard:
    """App-wide: sign-in is limited per address; every write per user and per address."""

    limiter: RateLimiter

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        limiter = self.limiter
        ip = connection.client.host if connection.client else "unknown"
        special = handler.opt.get(RATE_LIMIT_OPT)
        if special == "none":
            return
        if special == "signin":
            await limiter.hit("signin_ip", ip)
            return
        scope = connection.scope
        if scope["type"] != ScopeType.HTTP or scope["method"] not in WRITE_METHODS:
            return
        user = connection.scope.get("user")
        if user is not None:
            await limiter.hit("write_user", str(user.id))
        await limiter.hit("write_ip", ip)
