"""Redis backend: one INCR+XADD+PUBLISH script per message, one pub/sub connection per process.

* ``seq`` comes from INCR inside the same script that appends to the topic's stream and
  publishes, so every process sees one order, and the stream holds exactly the published
  frames (entry id ``<seq>-0``), trimmed to about HISTORY_LENGTH.
* One task owns the process's pub/sub connection: it alone sends SUBSCRIBE and UNSUBSCRIBE,
  in order, and it alone reads.  ``listen`` and ``unlisten`` only change the set of wanted
  topics and wake it; ``listen`` returns once Redis confirmed the subscription.  (Several
  tasks sharing a redis-py ``PubSub`` raced to open its connection: a subscription sent on a
  connection that was then replaced never delivered, and whole topics stayed silent.)
* If that connection drops, the owner reconnects, re-subscribes, and replays from the
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
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, RedisError

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
# A quiet pub/sub connection is PINGed this often; one that has not answered by the next PING
# is dead (a half-open TCP connection after a failover would otherwise stay silent for good).
PING_SECONDS = 10.0
# A subscribe that Redis has not confirmed by then fails (the client is told to try again).
LISTEN_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0


class RedisBackend(HubBackend):
    def __init__(self, redis: Redis, prefix: str, history: int = HISTORY_LENGTH) -> None:
        self._redis = redis
        # The owner's own reads (seq, catch-up) go through connections of its own, so that a
        # burst that drains the app's pool cannot pass for a lost pub/sub connection.
        pool = redis.connection_pool
        self._reads = Redis(
            connection_pool=ConnectionPool(
                connection_class=pool.connection_class,
                max_connections=2,
                **{**pool.connection_kwargs, "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS},
            )
        )
        self._prefix = f"{prefix}:hub"
        self._history = history
        self._script = redis.register_script(_PUBLISH)
        self._deliver: Deliver | None = None
        self._resync: Resync | None = None
        self.epoch = ""
        self.reconnects = 0
        # The owner task's state.  Topics go wanted -> sent (SUBSCRIBE written) -> live (Redis
        # confirmed it and ``_last`` holds the seq delivered up to).
        self._wanted: set[str] = set()
        self._sent: set[str] = set()
        self._unconfirmed: dict[str, int] = {}  # channel commands Redis has not answered yet
        self._last: dict[str, int] = {}
        self._stale: set[str] = set()  # live before Redis lost its data: resync on confirm
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._wake = asyncio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._pinged = False  # a PING is out and unanswered

    def _key(self, kind: str, topic: str) -> str:
        return f"{self._prefix}:{kind}:{topic}"

    def _channel(self, topic: str) -> bytes:
        return f"{self._prefix}:ch:{topic}".encode()

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        """Never fails for want of Redis: the app starts, /readyz says Redis is down, and the
        owner connects when Redis comes back."""
        self._deliver, self._resync = deliver, resync
        try:
            self.epoch = await self._current_epoch()
        except (RedisError, OSError) as exc:
            log.warning("hub_redis_unavailable", error=repr(exc))
        self._owner = asyncio.create_task(self._own(), name="hub-redis-pubsub")

    async def close(self) -> None:
        if self._owner is not None:
            self._owner.cancel()
            await asyncio.gather(self._owner, return_exceptions=True)
        self._fail_waiters(RedisError("hub closed"))
        await self._reads.aclose(close_connection_pool=True)

    async def publish(self, topic: str, head: bytes, tail: bytes, state: bytes | None) -> int:
        keys: list[str | bytes] = [
            self._key("seq", topic),
            self._key("log", topic),
            self._key("state", topic),
            self._channel(topic),
        ]
        seq = await self._script(keys=keys, args=[head, tail, self._history, state or b""])
        return int(seq)

    async def listen(self, topic: str) -> None:
        """Returns once every message after the topic's current seq will be delivered; raises
        RedisError when Redis cannot be reached."""
        self._wanted.add(topic)
        if topic in self._last:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(topic, []).append(waiter)
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), LISTEN_TIMEOUT_SECONDS)
        except TimeoutError:
            raise RedisError(f"{topic}: the subscription was not confirmed in time") from None
        finally:
            waiters = self._waiters.get(topic)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)

    async def unlisten(self, topic: str) -> None:
        self._wanted.discard(topic)
        # Nobody in this process waits for the topic any more (the hub unlistens only then).
        for waiter in self._waiters.pop(topic, []):
            if not waiter.done():
                waiter.set_result(None)
        self._wake.set()

    async def since(self, topic: str, seq: int) -> list[Message] | None:
        return await _since(
            self._redis, self._key("seq", topic), self._key("log", topic), topic, seq
        )

    async def _since_own(self, topic: str, seq: int) -> list[Message] | None:
        return await _since(
            self._reads, self._key("seq", topic), self._key("log", topic), topic, seq
        )

    async def snapshot(self, topic: str) -> Snapshot | None:
        values: Any = self._redis.hmget(self._key("state", topic), ["seq", "data"])
        seq, data = await values
        if seq is None or not isinstance(data, bytes):
            return None
        return Snapshot(int(seq), data)

    async def last_seq(self, topic: str) -> int:
        return await _last_seq(self._redis, self._key("seq", topic))

    async def _current_epoch(self, redis: Redis | None = None) -> str:
        redis = redis or self._redis
        key = f"{self._prefix}:epoch"
        await redis.set(key, secrets.token_hex(8), nx=True)
        value = await redis.get(key)
        return value.decode() if isinstance(value, bytes) else str(value)

    # -- the owner of the pub/sub connection ----------------------------------------------------

    async def _own(self) -> None:
        failures = 0
        while True:
            connection = None
            try:
                connection = await self._connect(reconnecting=failures > 0)
                failures = 0
                await self._pump(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis went away, or delivering a message failed: either way start over on a
                # fresh connection and catch up from the streams, rather than fall silent.
                if isinstance(exc, (RedisError, OSError)):
                    log.warning("hub_redis_disconnected", error=repr(exc))
                else:
                    log.exception("hub_redis_owner_failed")
                # Subscribes in progress fail now (their clients are told to try again);
                # topics already live are re-subscribed and caught up after the reconnect.
                self._fail_waiters(exc)
                await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1
            finally:
                if connection is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await connection.disconnect()

    async def _connect(self, reconnecting: bool) -> AbstractConnection:
        pool = self._redis.connection_pool
        # Its own connection, outside the pool; no read timeout: a quiet topic is not an error.
        kwargs = {
            **pool.connection_kwargs,
            "socket_timeout": None,
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        }
        connection: AbstractConnection = pool.connection_class(**kwargs)
        self._sent.clear()
        self._unconfirmed.clear()
        self._pinged = False
        # Topics given up while disconnected are forgotten, not caught up later.
        for topic in [topic for topic in self._last if topic not in self._wanted]:
            del self._last[topic]
        self._stale &= self._wanted
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            epoch = await self._current_epoch(self._reads)
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect()
            raise
        if self.epoch and epoch != self.epoch:
            # Redis lost its data: old sequence numbers mean nothing any more.
            self._stale |= self._last.keys()
            self._last.clear()
        self.epoch = epoch
        if reconnecting:
            self.reconnects += 1
        return connection

    async def _pump(self, connection: AbstractConnection) -> None:
        """Send what the wanted set asks for, read what Redis sends; one at a time, in order."""
        wake = asyncio.create_task(self._wake.wait())
        read = asyncio.create_task(_read(connection))
        try:
            while True:
                self._wake.clear()
                await self._reconcile(connection)
                done, _ = await asyncio.wait(
                    {wake, read}, timeout=PING_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if self._pinged:
                        raise ConnectionError("the pub/sub connection stopped answering")
                    self._pinged = True
                    await connection.send_command("PING", check_health=False)
                if wake in done:
                    wake = asyncio.create_task(self._wake.wait())
                if read in done:
                    await self._handle(read.result())
                    read = asyncio.create_task(_read(connection))
        finally:
            wake.cancel()
            read.cancel()
            await asyncio.gather(wake, read, return_exceptions=True)

    async def _reconcile(self, connection: AbstractConnection) -> None:
        add = sorted(self._wanted - self._sent)
        remove = sorted(self._sent - self._wanted)
        for topic in remove:
            self._sent.discard(topic)
            self._last.pop(topic, None)
            self._stale.discard(topic)
            self._unconfirmed[topic] = self._unconfirmed.get(topic, 0) + 1
        for topic in add:
            self._sent.add(topic)
            self._unconfirmed[topic] = self._unconfirmed.get(topic, 0) + 1
        if remove:
            channels = [self._channel(topic) for topic in remove]
            await connection.send_command("UNSUBSCRIBE", *channels, check_health=False)
        if add:
            channels = [self._channel(topic) for topic in add]
            await connection.send_command("SUBSCRIBE", *channels, check_health=False)

    async def _handle(self, response: Any) -> None:
        self._pinged = False  # whatever came, the connection is alive
        if not isinstance(response, list) or len(response) < 3:
            return  # PONG
        kind, channel = response[0], response[1]
        topic = channel.decode()[len(self._prefix) + 4 :]
        if kind == b"message":
            await self._receive(topic, response[2])
        elif kind in (b"subscribe", b"unsubscribe"):
            left = self._unconfirmed.get(topic, 0) - 1
            if left > 0:
                self._unconfirmed[topic] = left
                return
            self._unconfirmed.pop(topic, None)
            if kind == b"subscribe" and topic in self._sent:
                await self._go_live(topic)

    async def _go_live(self, topic: str) -> None:
        """Redis confirmed the subscription: everything after the seq read now will come."""
        if topic in self._last:
            await self._catch_up(topic)  # re-subscribed after a reconnect: fill the outage
        else:
            self._last[topic] = await _last_seq(self._reads, self._key("seq", topic))
            if topic in self._stale:
                self._stale.discard(topic)
                if self._resync is not None:
                    self._resync(topic)
        for waiter in self._waiters.pop(topic, []):
            if not waiter.done():
                waiter.set_result(None)

    async def _receive(self, topic: str, data: bytes) -> None:
        last = self._last.get(topic)
        if last is None:
            return  # not live: unsubscribed meanwhile, or the confirmation is still coming
        head, _, frame = data.partition(b" ")
        seq = int(head)
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
        missed = await self._since_own(topic, last)
        if missed is None:
            self._last[topic] = await _last_seq(self._reads, self._key("seq", topic))
            if self._resync is not None:
                self._resync(topic)
            return
        for message in missed:
            if message.seq == self._last.get(topic, 0) + 1:
                self._emit(message)

    def _fail_waiters(self, exc: BaseException) -> None:
        waiters, self._waiters = self._waiters, {}
        for pending in waiters.values():
            for waiter in pending:
                if not waiter.done():
                    waiter.set_exception(RedisError(f"pub/sub unavailable: {exc!r}"))


async def _read(connection: AbstractConnection) -> Any:
    return await connection.read_response(disable_decoding=True, push_request=True)


async def _last_seq(redis: Redis, key: str) -> int:
    value = await redis.get(key)
    return int(value) if value is not None else 0


async def _since(
    redis: Redis, seq_key: str, log_key: str, topic: str, seq: int
) -> list[Message] | None:
    last = await _last_seq(redis, seq_key)
    if seq > last:
        return None
    if seq == last:
        return []
    # Up to ``last`` only: what was published since the GET is not part of this answer.
    entries: Any = await redis.xrange(log_key, min=f"{seq + 1}-0", max=f"{last}-0")
    messages = [Message(topic, _seq_of(entry_id), fields[b"f"]) for entry_id, fields in entries]
    if len(messages) != last - seq or (messages and messages[0].seq != seq + 1):
        return None
    return messages


def _seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])
