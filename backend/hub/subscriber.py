"""One client's outbound side: a bounded queue with a named overflow policy per topic kind.

* State topics (prices, books, candles): when the queue is full, the topic's queued frames
  are dropped and the client is resynced with the newest snapshot (``recovered: false``), so
  a slow phone skips ahead instead of falling behind.
* Event topics (trades, user events): nothing may be skipped, so a client that lets the queue
  fill is disconnected with close code 4008 "slow consumer", and may resume with ``since``.

Frames are the shared bytes the hub encoded once; nothing is copied per client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

# At the 10 messages/s a busy topic sees, 256 queued frames is half a minute of backlog on a
# connection that is already hopeless; more would only hold memory for it.
MAX_PENDING = 256
SLOW_CONSUMER = 4008


class Outgoing(NamedTuple):
    """A frame as text, decoded once per message and shared by every subscriber."""

    topic: str  # "" for control frames
    seq: int
    text: str


class Subscriber:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        resync: Callable[[Subscriber, str], Awaitable[None]],
        *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._send = send
        self._resync_topic = resync
        self._max_pending = max_pending
        self._queue: deque[Outgoing] = deque()
        self._wakeup = asyncio.Event()
        self._last: dict[str, int] = {}  # topic -> last seq queued
        self._pending: dict[str, list[Outgoing]] = {}  # topics being subscribed: live buffer
        self._state_topics: set[str] = set()
        self._resyncs: set[str] = set()
        self.overflowed = asyncio.Event()
        self.topics: set[str] = set()

    # -- called by the hub (synchronously, from the fan-out) -------------------------------

    def begin(self, topic: str, is_state: bool) -> None:
        """Buffer live messages of ``topic`` until its first frames are queued."""
        self._pending[topic] = []
        self.topics.add(topic)
        if is_state:
            self._state_topics.add(topic)

    def complete(self, topic: str, frames: list[str], seq: int) -> None:
        """Queue the subscribe answer and history, then what arrived live meanwhile."""
        for frame in frames:
            self._put(Outgoing("", 0, frame))
        self._last[topic] = seq
        for message in self._pending.pop(topic, []):
            self.push(message)

    def drop(self, topic: str) -> None:
        self.topics.discard(topic)
        self._state_topics.discard(topic)
        self._pending.pop(topic, None)
        self._last.pop(topic, None)
        self._queue = deque(item for item in self._queue if item.topic != topic)

    def push(self, message: Outgoing) -> None:
        pending = self._pending.get(message.topic)
        if pending is not None:
            pending.append(message)
            return
        last = self._last.get(message.topic)
        if last is None or message.seq <= last:
            return
        if len(self._queue) >= self._max_pending:
            self._overflow(message.topic)
            return
        self._last[message.topic] = message.seq
        self._put(message)

    def control(self, frame: bytes) -> None:
        """Protocol answers (pong, errors) go out in order with the data."""
        self._put(Outgoing("", 0, frame.decode()))

    def resync(self, topic: str) -> None:
        """The topic's history broke (backend data loss): send a fresh snapshot."""
        if topic in self.topics:
            self._queue = deque(item for item in self._queue if item.topic != topic)
            self._resyncs.add(topic)
            self._wakeup.set()

    def _overflow(self, topic: str) -> None:
        if topic in self._state_topics:
            self.resync(topic)
        else:
            # The writer may be stuck in a send to this very client: the connection watches
            # this event and cuts it off rather than waiting for the send to return.
            self.overflowed.set()

    def _put(self, item: Outgoing) -> None:
        self._queue.append(item)
        self._wakeup.set()

    # -- the connection's writer task --------------------------------------------------------

    async def run(self) -> None:
        """Send queued frames until cancelled."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._resyncs:
                topic = self._resyncs.pop()
                self._pending[topic] = []
                await self._resync_topic(self, topic)
            while self._queue and not self.overflowed.is_set():
                item = self._queue.popleft()
                await self._send(item.text)
