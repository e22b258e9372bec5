"""Redis backend: one INCR+XADD+PUBLISH script per message, one pub/sub connection per process.

* ``seq`` comes from INCR inside the same script that appends to the topic's stream and
  publishes, so every process sees one order, and the stream holds exactly the published
  frames (entry id ``<seq>-0``), trimmed to about HISTORY_LENGTH.
* The process keeps one pub/sub connection and SUBSCRIBEs per topic, only while some local
  client wants the topic.
* If that connection drops, the listener reconnects, re-subscribes, and replays from the
  streams whatever it missed meanwhile, so clients see no gap.  A seq that jumps ahead is
  filled from the stream the same way.  If Redis lost its data (a restart without
  persistence), the epoch changes and every topic is resynced from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from backend.hub.backends.base import (
    HISTORY_LENGTH,
    Deliver,
    HubBackend,
    Message,
    Resync,
    Snapshot,
)

log = structlog.get_logger(__name__)

_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local frame = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'f', frame)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], 'seq', seq, 'data', ARGV[4]) end
redis.call('PUBLISH', KEYS[4], seq .. ' ' .. frame)
return seq
"""
# Reconnect quickly at first (a blip), then back off so a long outage is not a busy loop.
_BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class RedisBackend(HubBackend):
    def __init__(self, redis: Redis, prefix: str, history: int = HISTORY_LENGTH) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:hub"
        self._history = history
        self._script = redis.register_script(_PUBLISH)
        self._listened: set[str] = set()
        self._last: dict[str, int] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._deliver: Deliver | None = None
        self._resync: Resync | None = None
        self.epoch = ""
        self.reconnects = 0
        self._has_topics = asyncio.Event()

    def _key(self, kind: str, topic: str) -> str:
        return f"{self._prefix}:{kind}:{topic}"

    def _channel(self, topic: str) -> str:
        return f"{self._prefix}:ch:{topic}"

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        """Never fails for want of Redis: the app starts, /readyz says Redis is down, and the
        reader connects when Redis comes back."""
        self._deliver, self._resync = deliver, resync
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            self.epoch = await self._current_epoch()
        except (RedisError, OSError) as exc:
            log.warning("hub_redis_unavailable", error=repr(exc))
        self._reader = asyncio.create_task(self._read(), name="hub-redis-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def publish(self, topic: str, head: bytes, tail: bytes, state: bytes | None) -> int:
        keys = [
            self._key("seq", topic),
            self._key("log", topic),
            self._key("state", topic),
            self._channel(topic),
        ]
        seq = await self._script(keys=keys, args=[head, tail, self._history, state or b""])
        return int(seq)

    async def listen(self, topic: str) -> None:
        if topic in self._listened:
            return
        last = await self.last_seq(topic)
        if self._pubsub is not None:
            await self._pubsub.subscribe(self._channel(topic))
        # Only now: a topic marked listened but never subscribed would stay silent for good.
        self._last.setdefault(topic, last)
        self._listened.add(topic)
        self._has_topics.set()

    async def unlisten(self, topic: str) -> None:
        self._listened.discard(topic)
        self._last.pop(topic, None)
        if not self._listened:
            self._has_topics.clear()
        if self._pubsub is not None:
            # On failure the reconnect re-subscribes only to what is still listened.
            with contextlib.suppress(RedisError):
                await self._pubsub.unsubscribe(self._channel(topic))

    async def since(self, topic: str, seq: int) -> list[Message] | None:
        last = await self.last_seq(topic)
        if seq > last:
            return None
        if seq == last:
            return []
        entries: Any = await self._redis.xrange(self._key("log", topic), min=f"{seq + 1}-0")
        messages = [Message(topic, _seq_of(entry_id), fields[b"f"]) for entry_id, fields in entries]
        if len(messages) != last - seq or (messages and messages[0].seq != seq + 1):
            return None
        return messages

    async def snapshot(self, topic: str) -> Snapshot | None:
        values: Any = self._redis.hmget(self._key("state", topic), ["seq", "data"])
        seq, data = await values
        if seq is None or not isinstance(data, bytes):
            return None
        return Snapshot(int(seq), data)

    async def last_seq(self, topic: str) -> int:
        value = await self._redis.get(self._key("seq", topic))
        return int(value) if value is not None else 0

    async def _current_epoch(self) -> str:
        key = f"{self._prefix}:epoch"
        await self._redis.set(key, secrets.token_hex(8), nx=True)
        value = await self._redis.get(key)
        return value.decode() if isinstance(value, bytes) else str(value)

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                # redis-py refuses to read a pub/sub connection with no subscription.
                await self._has_topics.wait()
                assert self._pubsub is not None
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(*(self._channel(t) for t in self._listened))
                message = await self._pubsub.get_message(timeout=1.0)
                failures = 0
                if message is not None and message["type"] == "message":
                    await self._receive(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("hub_redis_disconnected", error=repr(exc))
                await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1
                await self._reconnect()

    async def _reconnect(self) -> None:
        try:
            if self._pubsub is not None:
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            if self._listened:
                await self._pubsub.subscribe(*(self._channel(t) for t in self._listened))
            self.reconnects += 1
            epoch = await self._current_epoch()
            if epoch != self.epoch:
                # Redis lost its data: old sequence numbers mean nothing any more.
                self.epoch = epoch
                for topic in list(self._listened):
                    self._last[topic] = await self.last_seq(topic)
                    if self._resync is not None:
                        self._resync(topic)
                return
            for topic in list(self._listened):
                await self._catch_up(topic)
        except (RedisError, OSError) as exc:
            log.warning("hub_redis_reconnect_failed", error=repr(exc))

    async def _receive(self, channel: bytes, data: bytes) -> None:
        topic = channel.decode()[len(self._prefix) + 4 :]
        if topic not in self._listened:
            return
        head, _, frame = data.partition(b" ")
        seq = int(head)
        last = self._last.get(topic, 0)
        if seq <= last:
            return  # already delivered (replayed from the stream after a reconnect)
        if seq > last + 1:
            # A gap: fill it from the stream, in order, before reading on.
            await self._catch_up(topic)
            return
        self._emit(Message(topic, seq, frame))

    def _emit(self, message: Message) -> None:
        self._last[message.topic] = message.seq
        if self._deliver is not None:
            self._deliver(message)

    async def _catch_up(self, topic: str) -> None:
        last = self._last.get(topic, 0)
        missed = await self.since(topic, last)
        if missed is None:
            self._last[topic] = await self.last_seq(topic)
            if self._resync is not None:
                self._resync(topic)
            return
        for message in missed:
            if message.seq == self._last.get(topic, 0) + 1:
                self._emit(message)


def _seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])
