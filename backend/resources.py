"""The process-wide resources the app opens at start-up and closes at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from backend.auth.ratelimit import RateLimiter
from backend.config import Settings
from backend.db.engine import Database


@dataclass(slots=True)
class Resources:
    settings: Settings
    db: Database
    redis: Redis | None
    limiter: RateLimiter

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        redis = Redis.from_url(settings.redis.url) if settings.redis.url else None
        return cls(
            settings=settings,
            db=Database.connect(settings),
            redis=redis,
            limiter=RateLimiter.from_settings(settings, redis),
        )

    async def close(self) -> None:
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()
