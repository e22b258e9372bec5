"""In-process backend for the embedded default: one server process, no Redis."""

from __future__ import annotations

import secrets
from collections import defaultdict, deque

from backend.hub.backends.base import (
    HISTORY_LENGTH,
    Deliver,
    HubBackend,
    Message,
    Resync,
    Snapshot,
)


class MemoryBackend(HubBackend):
    def __init__(self, history: int = HISTORY_LENGTH) -> None:
        self._seq: defaultdict[str, int] = defaultdict(int)
        self._log: defaultdict[str, deque[Message]] = defaultdict(lambda: deque(maxlen=history))
        self._state: dict[str, Snapshot] = {}
        self._listened: set[str] = set()
        self._deliver: Deliver | None = None
        self.epoch = secrets.token_hex(8)  # one per process: a restart loses the history

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None

    async def publish(self, topic: str, head: bytes, tail: bytes, state: bytes | None) -> int:
        seq = self._seq[topic] + 1
        self._seq[topic] = seq
        message = Message(topic, seq, head + str(seq).encode() + tail)
        self._log[topic].append(message)
        if state is not None:
            self._state[topic] = Snapshot(seq, state)
        if self._deliver is not None and topic in self._listened:
            self._deliver(message)
        return seq

    async def listen(self, topic: str) -> None:
        self._listened.add(topic)

    async def unlisten(self, topic: str) -> None:
        self._listened.discard(topic)

    async def since(self, topic: str, seq: int) -> list[Message] | None:
        return _after(list(self._log.get(topic, ())), seq, self._seq[topic])

    async def snapshot(self, topic: str) -> Snapshot | None:
        return self._state.get(topic)

    async def last_seq(self, topic: str) -> int:
        return self._seq[topic]


def _after(log: list[Message], seq: int, last: int) -> list[Message] | None:
    """The messages after ``seq`` if ``log`` still holds all of them."""
    if seq > last:
        return None  # a seq from before a reset of the backend: not ours to resume
    missed = [message for message in log if message.seq > seq]
    if len(missed) != last - seq:
        return None
    return missed
