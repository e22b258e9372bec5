"""The Redis client of a process: None when no REDIS_URL is set (the embedded default)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from backend.config import Settings

# Per process: the pub/sub owner holds its own connection; requests borrow these for a round
# trip each.
REDIS_CONNECTIONS = 50
REDIS_WAIT_SECONDS = 5.0


def connect_redis(settings: Settings) -> Redis | None:
    if not settings.redis.url:
        return None
    # A blocking pool waits for a free connection instead of failing a request when a burst
    # (thousands of WebSocket subscribes) wants more than it holds.
    pool = BlockingConnectionPool.from_url(
        settings.redis.url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT_SECONDS
    )
    return Redis.from_pool(pool)
