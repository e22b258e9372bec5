"""Telegram's sending limits: about 30 messages a second overall, one a second per chat.

Both limits are GCRA (the generic cell rate algorithm): each key holds a theoretical arrival
time (TAT), the earliest moment the next message may go.  A send takes a slot on the global
key and on the chat's key together, or on neither, so a busy chat never burns global slots
it cannot use.

There is no burst allowance: the tolerance is zero, so messages are spaced strictly at the
emission interval.  Telegram counts over short windows and answers a burst with 429
(``retry_after``), which then stalls every chat; evenly spaced sends never trip it.

``RedisLimiter`` keeps the TATs in Redis and reads the clock with Redis ``TIME`` inside one
script, so any number of worker processes share one clock and one budget.
``MemoryLimiter`` is the same algorithm in-process, for the embedded single-process default.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from redis.asyncio import Redis

# Telegram's documented limits for bots (core.telegram.org/bots/faq): "no more than 30
# messages per second" in bulk and "no more than one message per second" to one chat.
TELEGRAM_PER_SECOND = 30.0
TELEGRAM_PER_CHAT_PER_SECOND = 1.0

# KEYS: global TAT, chat TAT.  ARGV: global and chat emission intervals (microseconds), and the
# grace (ms) a key outlives its TAT by.  Returns 0 when both slots were taken, else the wait in
# microseconds: whole milliseconds, rounded up, would add half a millisecond to every wait, 2.5%
# of the 20 ms spacing at 50/s.  TATs are integer microseconds of Redis TIME, formatted with
# %.0f because Lua's tostring would round them to 14 significant digits.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local global_tat = tonumber(redis.call('GET', KEYS[1])) or now
local chat_tat = tonumber(redis.call('GET', KEYS[2])) or now
local wait = math.max(global_tat - now, chat_tat - now)
if wait > 0 then
    return wait
end
local grace = tonumber(ARGV[3])
local function take(key, tat, interval)
    local next_tat = math.ceil(math.max(tat, now) + interval)
    local ttl = math.ceil((next_tat - now) / 1000) + grace
    redis.call('SET', key, string.format('%.0f', next_tat), 'PX', string.format('%d', ttl))
end
take(KEYS[1], global_tat, tonumber(ARGV[1]))
take(KEYS[2], chat_tat, tonumber(ARGV[2]))
return 0
"""
# Once its TAT has passed a key decides nothing (max(tat, now) is now), so it may go then; the
# few milliseconds past it only keep expiry from ever racing the TAT itself.
_EXPIRY_GRACE_MS = 5


class DeliveryLimiter(ABC):
    @abstractmethod
    async def acquire(self, chat_id: int) -> float:
        """Take a sending slot for ``chat_id`` now and return 0.0, or take nothing and return the
        seconds to wait before asking again (the larger of the global and the per-chat wait)."""

    async def close(self) -> None:
        """Release what the limiter owns; neither implementation owns a connection."""
        return None


def _intervals(per_second: float, per_chat_per_second: float) -> tuple[float, float]:
    if per_second <= 0 or per_chat_per_second <= 0:
        raise ValueError("sending rates must be positive")
    return 1.0 / per_second, 1.0 / per_chat_per_second


class RedisLimiter(DeliveryLimiter):
    def __init__(
        self, redis: Redis, prefix: str, per_second: float, per_chat_per_second: float
    ) -> None:
        interval, chat_interval = _intervals(per_second, per_chat_per_second)
        self._args = [interval * 1e6, chat_interval * 1e6, _EXPIRY_GRACE_MS]
        self._global_key = f"{prefix}:notify:global"
        self._chat_prefix = f"{prefix}:notify:chat:"
        self._script = redis.register_script(_ACQUIRE)

    def chat_key(self, chat_id: int) -> str:
        return f"{self._chat_prefix}{chat_id}"

    async def acquire(self, chat_id: int) -> float:
        keys = [self._global_key, self.chat_key(chat_id)]
        wait_us = await self._script(keys=keys, args=self._args)
        return int(wait_us) / 1e6


class MemoryLimiter(DeliveryLimiter):
    def __init__(
        self,
        per_second: float,
        per_chat_per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval, self._chat_interval = _intervals(per_second, per_chat_per_second)
        self._clock = clock
        self._tat = 0.0
        # A chat is granted only once its TAT has passed, so its new TAT is now + interval:
        # moving it to the end on each grant keeps this ordered by TAT, oldest first.
        self._chats: OrderedDict[int, float] = OrderedDict()

    @property
    def tracked_chats(self) -> int:
        return len(self._chats)

    async def acquire(self, chat_id: int) -> float:
        now = self._clock()
        self._forget_stale(now)
        wait = max(self._tat - now, self._chats.get(chat_id, now) - now)
        if wait > 0:
            return wait
        self._tat = max(self._tat, now) + self._interval
        self._chats[chat_id] = now + self._chat_interval
        self._chats.move_to_end(chat_id)
        return 0.0

    def _forget_stale(self, now: float) -> None:
        """Drop chats whose TAT has passed: they constrain nothing, and memory stays bounded
        by the chats sent to within the last per-chat interval."""
        while self._chats:
            chat_id, tat = next(iter(self._chats.items()))
            if tat > now:
                return
            del self._chats[chat_id]


def limiter_for(
    redis: Redis | None, prefix: str, per_second: float, per_chat_per_second: float
) -> DeliveryLimiter:
    """Redis when configured (several processes share one budget), else in-process."""
    if redis is None:
        return MemoryLimiter(per_second, per_chat_per_second)
    return RedisLimiter(redis, prefix, per_second, per_chat_per_second)
