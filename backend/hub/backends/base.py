"""What the hub needs from a backend: ordered publishing, bounded history, latest state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple

# Messages kept per topic for resuming clients: at a few messages a second per topic this is
# minutes of history, enough to ride out a phone losing signal in a lift.
HISTORY_LENGTH = 1000


class Message(NamedTuple):
    topic: str
    seq: int
    frame: bytes


class Snapshot(NamedTuple):
    seq: int
    data: bytes  # the state as JSON, valid as of ``seq``


Deliver = Callable[[Message], None]
Resync = Callable[[str], None]


class HubBackend(ABC):
    """Sequence numbers rise by exactly one per message per topic across every process that
    shares the backend; ``deliver`` receives each message of a listened topic once, in order."""

    epoch: str = ""
    """Changes when the backend loses its history; sequence numbers of another epoch mean
    nothing here."""

    @abstractmethod
    async def start(self, deliver: Deliver, resync: Resync) -> None:
        """Deliver messages of listened topics to ``deliver``; call ``resync`` for a topic
        whose history broke (its subscribers need a fresh snapshot)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, head: bytes, tail: bytes, state: bytes | None) -> int:
        """Assign the next seq, store and broadcast ``head + seq + tail``; return the seq."""

    @abstractmethod
    async def listen(self, topic: str) -> None:
        """Start receiving ``topic`` in this process (once, however many clients want it)."""

    @abstractmethod
    async def unlisten(self, topic: str) -> None: ...

    @abstractmethod
    async def since(self, topic: str, seq: int) -> list[Message] | None:
        """Every message after ``seq``, or None when the history no longer reaches back."""

    @abstractmethod
    async def snapshot(self, topic: str) -> Snapshot | None:
        """The latest state published with a message of ``topic``."""

    @abstractmethod
    async def last_seq(self, topic: str) -> int: ...
