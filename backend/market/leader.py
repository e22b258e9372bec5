"""Runs a job in exactly one process of many, elected through a lease in Redis.

The feed must run once per deployment, not once per server process: two simulators would
publish two competing price paths.  The holder renews its lease well within its lifetime;
a holder that dies (or loses Redis) stops being renewed, and another process takes over
within LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)
Job = Callable[[], Coroutine[Any, Any, None]]

# Long enough to ride out a GC pause or a slow Redis reply, short enough that a takeover
# after a crash is not noticed by users: the prices stall for at most this long.
LEASE_SECONDS = 6.0
RENEW_SECONDS = LEASE_SECONDS / 3

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


async def run_as_leader(redis: Redis, key: str, job: Job) -> None:
    """Run ``job`` while this process holds the lease ``key``; retry for ever until cancelled."""
    me = secrets.token_hex(8)
    renew = redis.register_script(_RENEW)
    lease_ms = int(LEASE_SECONDS * 1000)
    while True:
        try:
            if await redis.set(key, me, nx=True, px=lease_ms):
                log.info("leader_elected", key=key)
                await _hold(renew, key, me, lease_ms, job)
                log.info("leader_lost", key=key)
        except (RedisError, OSError) as exc:
            log.warning("leader_election_failed", key=key, error=repr(exc))
        except Exception:
            log.exception("leader_job_failed", key=key)
        await asyncio.sleep(RENEW_SECONDS)


async def _hold(renew: AsyncScript, key: str, me: str, lease_ms: int, job: Job) -> None:
    task = asyncio.create_task(job(), name=f"leader:{key}")
    try:
        while not task.done():
            await asyncio.sleep(RENEW_SECONDS)
            if not await renew(keys=[key], args=[me, lease_ms]):
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
