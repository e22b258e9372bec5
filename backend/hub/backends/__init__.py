"""Hub backends: in-process memory (embedded default) and Redis (many server processes)."""

from __future__ import annotations

from redis.asyncio import Redis

from backend.hub.backends.base import HubBackend
from backend.hub.backends.memory import MemoryBackend
from backend.hub.backends.redis import RedisBackend


def backend_for(redis: Redis | None, prefix: str) -> HubBackend:
    """Redis when the process has it (every server shares the topics), else this process only."""
    return RedisBackend(redis, prefix) if redis is not None else MemoryBackend()
