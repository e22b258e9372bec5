"""One ``/ws`` client after the handshake: operations in, frames out, no task while idle.

A ``Connection`` is both the wire's peer (it is handed each text message) and the
subscriber's wire (frames go to its link).  Operations that need the backend or the database
(subscribe, unsubscribe, auth, a resync) run in order on a task that exists only while there
is such work; a ping with nothing ahead of it is answered at once.

The ``SocketRegistry`` holds this process's connections.  One sweeper task closes sockets
that subscribe to nothing for IDLE_SECONDS and re-checks every signed-in socket's session in
one query, instead of a timer task per socket.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from backend.auth.service import live_sessions
from backend.auth.sessions import SessionIdentity, authenticate
from backend.config import Settings
from backend.hub import protocol
from backend.hub.html import HtmlFollow
from backend.hub.hub import Hub
from backend.hub.protocol import INTERNAL_ERROR, NORMAL_CLOSURE, POLICY_VIOLATION
from backend.hub.subscriber import Outgoing, Subscriber, Wire
from backend.hub.topics import TopicError, check_access, parse_topic
from backend.ops.metrics import websocket_connections

log = structlog.get_logger(__name__)

# A client subscribes a handful of topics when a tab opens: 20 operations at once and 10 a
# second after that is generous; beyond it operations are refused, and a client that keeps
# flooding (100 refused) is disconnected with 1008.
OPS_BURST = 20
OPS_PER_SECOND = 10.0
OPS_REFUSED_LIMIT = 100
# Operations waiting behind a slow one (a subscribe during a Redis hiccup): more than a
# burst's worth is a client that does not wait for answers.
MAX_QUEUED_OPS = 2 * OPS_BURST
# A socket that subscribes to nothing for this long is a leftover tab or a scanner: its slot
# is worth more to someone else.  (Half-open sockets are reaped by uvicorn's 20 s pings.)
IDLE_SECONDS = 60.0
# How often the sweeper looks for idle sockets (sessions are re-checked at their own period):
# a pass over ten thousand sockets costs about a millisecond.
SWEEP_SECONDS = 1.0
# Session ids per liveness query: well inside every database's limit on bound parameters.
SESSIONS_PER_QUERY = 1000


class Viewer:
    """The socket's session: set at connect or by an auth frame, cleared when it ends."""

    __slots__ = ("session",)

    def __init__(self, session: SessionIdentity | None) -> None:
        self.session = session

    @property
    def user_id(self) -> int | None:
        return self.session.user_id if self.session is not None else None


class _Resync:
    __slots__ = ("topic",)

    def __init__(self, topic: str) -> None:
        self.topic = topic


class _SessionEnded:
    __slots__ = ()


Job = protocol.Operation | _Resync | _SessionEnded


class Connection:
    __slots__ = (
        "_follow",
        "_jobs",
        "_link",
        "_refilled",
        "_refused",
        "_registry",
        "_tokens",
        "_worker",
        "address",
        "idle_since",
        "subscriber",
        "viewer",
    )

    def __init__(
        self,
        registry: SocketRegistry,
        link: Wire,
        address: str,
        viewer: Viewer,
        follow: HtmlFollow | None = None,
    ) -> None:
        self._registry = registry
        self._link = link
        self._follow = follow
        self._jobs: deque[Job] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._tokens, self._refilled, self._refused = float(OPS_BURST), time.monotonic(), 0
        self.address = address
        self.viewer = viewer
        self.idle_since: float | None = time.monotonic()
        self.subscriber = Subscriber(link, self._resync_later)

    def close(self, code: int, reason: str) -> None:
        self._link.close(code, reason)

    def _html_after(self, item: Outgoing) -> Outgoing | None:
        assert self._follow is not None
        text = self._follow.after(item.text)
        return shared_frame(text) if text is not None else None

    # -- the wire's peer -------------------------------------------------------------------

    def on_text(self, text: str) -> None:
        try:
            self._take(text)
        except Exception:
            log.exception("ws_reader_failed")
            self.close(INTERNAL_ERROR, "internal error")

    def _take(self, text: str) -> None:
        now = time.monotonic()
        self._tokens = min(OPS_BURST, self._tokens + (now - self._refilled) * OPS_PER_SECOND)
        self._refilled = now
        if self._tokens < 1:
            self._refused += 1
            if self._refused >= OPS_REFUSED_LIMIT:
                self.close(POLICY_VIOLATION, "too many operations")
                return
            self.subscriber.control(
                protocol.error("rate_limited", "too many operations; slow down")
            )
            return
        self._tokens -= 1
        try:
            operation = protocol.decode_operation(text)
        except protocol.ProtocolError as exc:
            self.subscriber.control(protocol.error(exc.code, exc.message))
            return
        if isinstance(operation, protocol.Ping) and not self._jobs and self._worker is None:
            self.subscriber.control(protocol.PONG)
            return
        if len(self._jobs) >= MAX_QUEUED_OPS:
            self.subscriber.control(protocol.error("rate_limited", "wait for the answers"))
            return
        self._queue(operation)

    def on_drained(self) -> None:
        self.subscriber.drained()

    def on_closed(self) -> None:
        self._registry.forget(self)
        if self._worker is not None:
            self._worker.cancel()
        self._jobs.clear()
        self._registry.spawn(self._registry.hub.leave(self.subscriber))

    def _resync_later(self, topic: str) -> None:
        self._queue(_Resync(topic))

    def session_ended(self) -> None:
        """The sweeper found the session revoked or expired: private topics end now."""
        self.viewer.session = None
        for name in list(self.subscriber.topics):
            if parse_topic(name).is_private:
                self.subscriber.mute(name)  # no frame of it from here; the hub lets go below
        self.subscriber.control(
            protocol.error("session_ended", "signed out: private topics are closed")
        )
        self._queue(_SessionEnded())

    # -- work that needs the backend, one job at a time ------------------------------------

    def _queue(self, job: Job) -> None:
        self._jobs.append(job)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="ws-ops")

    async def _work(self) -> None:
        try:
            while self._jobs:
                await self._run(self._jobs.popleft())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ws_operation_failed")
            self.close(INTERNAL_ERROR, "internal error")
        finally:
            self._worker = None
            self.idle_since = None if self.subscriber.topics else time.monotonic()

    async def _run(self, job: Job) -> None:
        hub = self._registry.hub
        if isinstance(job, protocol.Subscribe):
            await self._subscribe(job)
        elif isinstance(job, protocol.Unsubscribe):
            for name in job.topics:
                if self._follow is not None:
                    self._follow.discard(name)
                await hub.unsubscribe(self.subscriber, name)
        elif isinstance(job, protocol.Auth):
            await self._auth(job)
        elif isinstance(job, protocol.Ping):
            self.subscriber.control(protocol.PONG)
        elif isinstance(job, _Resync):
            try:
                await hub.resubscribe(self.subscriber, job.topic)
            except (RedisError, OSError) as exc:
                log.warning("hub_resync_failed", topic=job.topic, error=repr(exc))
                self.close(INTERNAL_ERROR, "try again shortly")
        else:
            await self._drop_forbidden()

    async def _subscribe(self, operation: protocol.Subscribe) -> None:
        hub, subscriber = self._registry.hub, self.subscriber
        for name in operation.topics:
            try:
                topic = parse_topic(name)
                check_access(topic, self.viewer.user_id)
                if name in operation.html:
                    if self._follow is None:
                        raise TopicError("unknown_topic", f"{name} has no HTML fragment")
                    # Before the subscribe: its snapshot is followed by a fragment as well.
                    self._follow.add(topic)
                    subscriber.follow(self._html_after)  # only pages that asked pay for it
            except TopicError as exc:
                subscriber.control(protocol.error(exc.code, exc.message))
                continue
            if topic.name in subscriber.topics:
                continue
            if len(subscriber.topics) >= protocol.MAX_TOPICS_PER_CONNECTION:
                subscriber.control(protocol.error("too_many_topics", "unsubscribe something first"))
                return
            since = operation.since.get(topic.name)
            try:
                await hub.subscribe(subscriber, topic, since, operation.epoch)
            except (RedisError, OSError) as exc:
                log.warning("hub_subscribe_failed", topic=topic.name, error=repr(exc))
                subscriber.control(
                    protocol.error("unavailable", f"{topic.name}: try again shortly")
                )

    async def _auth(self, operation: protocol.Auth) -> None:
        registry = self._registry
        identity = await authenticate(registry.db, registry.auth, operation.token)
        if identity is None:
            self.subscriber.control(
                protocol.error("unauthorized", "the token names no live session")
            )
            return
        self.viewer.session = identity
        await self._drop_forbidden()  # another user's topics, if it switched
        self.subscriber.control(protocol.authed(identity.user_id))

    async def _drop_forbidden(self) -> None:
        for name in list(self.subscriber.topics):
            try:
                check_access(parse_topic(name), self.viewer.user_id)
            except TopicError:
                await self._registry.hub.unsubscribe(self.subscriber, name)


class HtmlConnection(Connection):
    """A page on ``/ws/html``: it only listens; whatever htmx sends (form values) is dropped."""

    __slots__ = ()

    def on_text(self, text: str) -> None:
        pass


_shared_frames: dict[str, Outgoing] = {}
# Fragments of the newest frames (the ticker's), framed once per process like the data.
_SHARED_FRAMES_KEPT = 16


def shared_frame(text: str) -> Outgoing:
    """A frame that many connections send alike, framed once."""
    item = _shared_frames.get(text)
    if item is None:
        if len(_shared_frames) >= _SHARED_FRAMES_KEPT:
            _shared_frames.clear()
        item = _shared_frames[text] = Outgoing.control(text.encode())
    return item


class SocketRegistry:
    """This process's ``/ws`` connections: the per-address cap, idle and session sweeps."""

    def __init__(self, hub: Hub, db: Any, auth: Any, settings: Settings) -> None:
        self.hub, self.db, self.auth = hub, db, auth
        self._settings = settings
        self._per_address: Counter[str] = Counter()
        self._open: set[Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """The app's own address: a cookie only authenticates a handshake from our pages."""
        return self._settings.app.base_url

    def admit(self, address: str) -> bool:
        """Count one more socket from ``address``, unless it already holds its share."""
        if self._per_address[address] >= self._settings.hub.max_sockets_per_address:
            return False
        self._per_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def add(self, connection: Connection) -> None:
        self._open.add(connection)
        websocket_connections.inc()

    def forget(self, connection: Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self.release(connection.address)
            websocket_connections.dec()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="ws-sweeper")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._open)

    async def _sweep_forever(self) -> None:
        checked = time.monotonic()
        while True:
            every = self._settings.auth.socket_recheck_seconds
            await asyncio.sleep(min(SWEEP_SECONDS, every))
            try:
                self.close_idle(time.monotonic())
            except Exception:
                log.exception("ws_idle_sweep_failed")
            if time.monotonic() - checked >= every:
                checked = time.monotonic()
                try:
                    await self.recheck_sessions()
                except (SQLAlchemyError, OSError) as exc:
                    # A database blip must not sign everybody out; the next round tries again.
                    log.warning("ws_session_recheck_failed", error=repr(exc))
                except Exception:
                    log.exception("ws_session_recheck_failed")

    def close_idle(self, now: float) -> None:
        for connection in list(self._open):
            since = connection.idle_since
            if since is not None and now - since >= IDLE_SECONDS:
                connection.close(NORMAL_CLOSURE, "idle")

    async def recheck_sessions(self) -> None:
        now = datetime.now(UTC)
        by_session: dict[str, list[Connection]] = {}
        for connection in list(self._open):
            session = connection.viewer.session
            if session is None:
                continue
            if session.expires_at <= now:
                connection.session_ended()
            else:
                by_session.setdefault(session.session_id, []).append(connection)
        ids = list(by_session)
        for start in range(0, len(ids), SESSIONS_PER_QUERY):
            chunk = ids[start : start + SESSIONS_PER_QUERY]
            async with self.db.reads() as session:
                live = await live_sessions(session, chunk)
            for session_id in chunk:
                if session_id not in live:
                    for connection in by_session[session_id]:
                        # Not one that signed in again meanwhile, with another session.
                        current = connection.viewer.session
                        if current is not None and current.session_id == session_id:
                            connection.session_ended()
