"""The hub: publishes through a backend and fans messages out to this process's clients."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import msgspec
import structlog

from backend.hub import protocol
from backend.hub.backends.base import HubBackend, Message
from backend.hub.frames import text_frame
from backend.hub.protocol import Kind
from backend.hub.subscriber import Outgoing, Subscriber
from backend.hub.topics import Topic, parse_topic

_encode = msgspec.json.Encoder().encode
log = structlog.get_logger(__name__)


class Hub:
    def __init__(self, backend: HubBackend) -> None:
        self.backend = backend
        self._local: defaultdict[str, set[Subscriber]] = defaultdict(set)
        # Topics whose backend subscription is being set up: later subscribers wait for it,
        # or they could take a snapshot older than the first message they will be sent.
        self._listening: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        await self.backend.start(self._deliver, self._resync)

    async def close(self) -> None:
        await self.backend.close()

    @property
    def epoch(self) -> str:
        return self.backend.epoch

    async def publish(self, topic: str, kind: Kind, data: Any, *, state: Any | None = None) -> int:
        """Publish to every subscriber of ``topic`` on every server; returns its seq.

        ``state`` is the topic's full state after this message (state topics): a client that
        subscribes later starts from it.
        """
        parse_topic(topic)
        head, tail = protocol.frame_parts(topic, kind, data)
        encoded_state = _encode(state) if state is not None else None
        return await self.backend.publish(topic, head, tail, encoded_state)

    async def subscribe(
        self, subscriber: Subscriber, topic: Topic, since: int | None, epoch: str | None
    ) -> None:
        """Answer ``subscribed`` with history (``since``) or a snapshot, then go live."""
        subscriber.begin(topic.name, topic.is_state)
        self._local[topic.name].add(subscriber)
        try:
            await self._listen(topic.name)
            same_epoch = epoch is None or epoch == self.epoch
            missed = None
            if since is not None and same_epoch:
                missed = await self.backend.since(topic.name, since)
            if missed is not None:
                assert since is not None
                last = missed[-1].seq if missed else since
                frames = [self._subscribed(topic.name, last, recovered=True)]
                frames += [message.frame for message in missed]
            else:
                last, frames = await self._fresh_start(topic)
        except BaseException:
            # Half a subscription would buffer live messages for nobody: undo it whole.
            await self.unsubscribe(subscriber, topic.name)
            raise
        subscriber.complete(topic.name, frames, last)

    async def _listen(self, topic: str) -> None:
        pending = self._listening.get(topic)
        if pending is None:
            pending = asyncio.create_task(self.backend.listen(topic), name=f"listen:{topic}")
            self._listening[topic] = pending
            pending.add_done_callback(self._forget_failed_listen)
        await asyncio.shield(pending)

    def _forget_failed_listen(self, task: asyncio.Task[None]) -> None:
        # A failed setup is retried by the next subscriber instead of being remembered.
        if task.cancelled() or task.exception() is not None:
            topic = task.get_name().removeprefix("listen:")
            if self._listening.get(topic) is task:
                del self._listening[topic]

    async def resubscribe(self, subscriber: Subscriber, topic: str) -> None:
        """Resync one subscriber's topic from a fresh start (it was buffering meanwhile)."""
        last, frames = await self._fresh_start(parse_topic(topic))
        subscriber.complete(topic, frames, last)

    async def unsubscribe(self, subscriber: Subscriber, topic: str) -> None:
        subscriber.drop(topic)
        local = self._local.get(topic)
        if local is None:
            return
        local.discard(subscriber)
        if not local:
            del self._local[topic]
            self._listening.pop(topic, None)
            await self.backend.unlisten(topic)

    async def leave(self, subscriber: Subscriber) -> None:
        for topic in list(subscriber.topics):
            await self.unsubscribe(subscriber, topic)

    def local_subscribers(self, topic: str) -> int:
        return len(self._local.get(topic, ()))

    async def _fresh_start(self, topic: Topic) -> tuple[int, list[bytes]]:
        snapshot = await self.backend.snapshot(topic.name) if topic.is_state else None
        if snapshot is not None:
            frame = protocol.encode_frame(
                topic.name, snapshot.seq, "snapshot", msgspec.Raw(snapshot.data)
            )
            subscribed = self._subscribed(topic.name, snapshot.seq, recovered=False)
            return snapshot.seq, [subscribed, frame]
        last = await self.backend.last_seq(topic.name)
        return last, [self._subscribed(topic.name, last, recovered=False)]

    def _subscribed(self, topic: str, seq: int, recovered: bool) -> bytes:
        return protocol.subscribed(topic, seq, recovered, self.epoch)

    def _deliver(self, message: Message) -> None:
        subscribers = self._local.get(message.topic)
        if not subscribers:
            return
        # Framed once here; every subscriber's wire gets the same bytes.
        frame = message.frame
        outgoing = Outgoing(message.topic, message.seq, frame.decode(), text_frame(frame))
        for subscriber in list(subscribers):
            try:
                subscriber.push(outgoing)
            except Exception:
                # One client's failure (a fragment that does not render) is not everyone's.
                log.exception("hub_push_failed", topic=message.topic)
                subscriber.wire.close(protocol.INTERNAL_ERROR, "internal error")

    def _resync(self, topic: str) -> None:
        for subscriber in self._local.get(topic, ()):
            subscriber.resync(topic)
