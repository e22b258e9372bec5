"""One client's outbound side: frames go straight to its wire while it keeps up, and a named
policy per topic kind applies to a client that does not read.

A client is behind once its wire is paused: the transport holds more than STATE_BACKLOG
bytes it could not hand to the kernel (whose own buffer is kept small, see wire.py).  Then
frames wait in a bounded queue of references to the shared frames, and go out together
when the wire drains:

* State topics (prices, books, candles): frames are skipped while the client is behind, and
  once it has caught up it is resynced with the newest snapshot (``recovered: false``), so a
  slow phone skips ahead instead of falling behind.
* Event topics (trades, user events): nothing may be skipped, so a client with MAX_PENDING
  frames waiting is disconnected with close code 4008 "slow consumer", and may resume with
  ``since``.

Message frames are the bytes the hub framed once per process; nothing is copied per client.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

from backend.hub.frames import text_frame

# The transport's high-water mark (wire.py sets it): past it the wire is paused, and it says
# when it drained.
STATE_BACKLOG = 64 * 1024
# At the 10 messages/s a busy topic sees, 256 waiting frames is half a minute of backlog on a
# connection that is already hopeless; more would only hold memory for it.
MAX_PENDING = 256
SLOW_CONSUMER = 4008


class Outgoing(NamedTuple):
    """A frame, as text and as the WebSocket frame bytes, made once and shared."""

    topic: str  # "" for control frames
    seq: int
    text: str
    frame: bytes

    @classmethod
    def control(cls, payload: bytes) -> Outgoing:
        return cls("", 0, payload.decode(), text_frame(payload))


class Wire(Protocol):
    """Where a subscriber's frames go: the uvicorn wire (wire.py) or an ASGI adapter."""

    @property
    def is_paused(self) -> bool:
        """The client is behind: more than STATE_BACKLOG bytes are waiting; a drain follows."""
        ...

    def send_item(self, item: Outgoing) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class Subscriber:
    """A topic is live while ``_last`` holds it: one lookup per frame on the fan-out's path.
    A topic being (re)started buffers in ``_pending``; a skipped or muted one is in neither."""

    __slots__ = (
        "_follow",
        "_last",
        "_pending",
        "_queue",
        "_request_resync",
        "_skipped",
        "_state_topics",
        "_wire",
        "topics",
    )

    def __init__(
        self,
        wire: Wire,
        request_resync: Callable[[str], None],
        follow: Callable[[Outgoing], Outgoing | None] | None = None,
    ) -> None:
        self._wire = wire
        self._request_resync = request_resync
        self._follow = follow  # a frame sent after some topics' frames (html.py)
        self._last: dict[str, int] = {}  # live topic -> last seq sent
        self._pending: dict[str, list[Outgoing]] = {}  # topics being (re)started: live buffer
        self._state_topics: set[str] = set()
        self._skipped: set[str] = set()  # state topics skipped until the wire drains
        self._queue: deque[Outgoing] | None = None  # frames waiting while the wire is paused
        self.topics: set[str] = set()

    @property
    def wire(self) -> Wire:
        return self._wire

    def follow(self, hook: Callable[[Outgoing], Outgoing | None]) -> None:
        """From now on ``hook`` may add a frame after each frame sent."""
        self._follow = hook

    # -- called by the hub (synchronously, from the fan-out) -------------------------------

    def begin(self, topic: str, is_state: bool) -> None:
        """Buffer live messages of ``topic`` until its first frames are sent."""
        self._pending[topic] = []
        self._last.pop(topic, None)
        self.topics.add(topic)
        if is_state:
            self._state_topics.add(topic)

    def complete(self, topic: str, frames: list[bytes], seq: int) -> None:
        """Send the subscribe answer and history, then what arrived live meanwhile."""
        pending = self._pending.pop(topic, None)
        if pending is None:
            return  # dropped or muted while its start was being fetched
        for payload in frames:
            self._send(Outgoing(topic, 0, payload.decode(), text_frame(payload)))
        self._last[topic] = seq
        for message in pending:
            self.push(message)

    def drop(self, topic: str) -> None:
        self.topics.discard(topic)
        self._state_topics.discard(topic)
        self.mute(topic)

    def mute(self, topic: str) -> None:
        """Send nothing more of ``topic`` (it stays subscribed until the hub lets it go)."""
        self._skipped.discard(topic)
        self._pending.pop(topic, None)
        self._last.pop(topic, None)
        self._purge(topic)

    def push(self, message: Outgoing) -> None:
        topic = message.topic
        last = self._last.get(topic)
        if last is None:
            pending = self._pending.get(topic)
            if pending is not None:
                pending.append(message)
            return
        if message.seq <= last:
            return
        if (self._queue is not None or self._wire.is_paused) and topic in self._state_topics:
            del self._last[topic]
            self._skipped.add(topic)
            return
        self._last[topic] = message.seq
        self._send(message)

    def control(self, payload: bytes) -> None:
        """Protocol answers (pong, errors) go out in order with the data."""
        self._put(Outgoing.control(payload))

    def resync(self, topic: str) -> None:
        """The topic's history broke (backend data loss): start it again from a snapshot."""
        if topic in self.topics and topic not in self._pending:
            self._skipped.discard(topic)
            self._last.pop(topic, None)
            self._purge(topic)
            self._pending[topic] = []
            self._request_resync(topic)

    def drained(self) -> None:
        """The wire caught up: waiting frames go out, then skipped state topics restart from
        their newest snapshot."""
        queue, wire = self._queue, self._wire
        while queue:
            wire.send_item(queue.popleft())
            if wire.is_paused:
                return  # the rest at the next drain
        self._queue = None
        for topic in list(self._skipped):
            self.resync(topic)

    def _send(self, item: Outgoing) -> None:
        self._put(item)
        if self._follow is not None:
            extra = self._follow(item)
            if extra is not None:
                self._put(extra)

    def _purge(self, topic: str) -> None:
        """Forget the topic's waiting frames: it ended, or it starts over."""
        if self._queue:
            self._queue = deque(item for item in self._queue if item.topic != topic) or None

    def _put(self, item: Outgoing) -> None:
        queue = self._queue
        if queue is None:
            if not self._wire.is_paused:
                self._wire.send_item(item)
                return
            queue = self._queue = deque()
        if len(queue) >= MAX_PENDING:
            self._wire.close(SLOW_CONSUMER, "slow consumer")
            return
        queue.append(item)
