"""WebSocket routes of the hub: ``/ws`` speaks the JSON protocol (protocol.py), ``/ws/html``
sends rendered fragments (html.py).

A route does the handshake-time work (the per-address cap, credentials, Origin) and then
hands the connection to a ``Connection`` (connection.py).  On our uvicorn protocol (wire.py)
the route detaches and returns, and the connection lives on without a task of its own; on
any other ASGI server the route stays and pumps the socket through an ``AsgiLink``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import structlog
from litestar import Controller, WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from redis.exceptions import RedisError

from backend.auth.sessions import PUBLIC
from backend.hub.auth import TOO_MANY_SOCKETS, UNAUTHORIZED, BadCredential, connect_session
from backend.hub.connection import (
    Connection,
    HtmlConnection,
    SocketRegistry,
    Viewer,
    shared_frame,
)
from backend.hub.html import FragmentRenderer, HtmlFollow, html_topics
from backend.hub.protocol import INTERNAL_ERROR, NORMAL_CLOSURE, POLICY_VIOLATION
from backend.hub.subscriber import STATE_BACKLOG, Outgoing
from backend.hub.topics import TopicError
from backend.hub.wire import wire_of

log = structlog.get_logger(__name__)

# A client being closed gets this long to read what is queued before the close frame; after
# that the connection is dropped (the plain-ASGI path; wire.py has uvicorn's own timer).
CLOSE_WAIT = 10.0


class HubController(Controller):
    opt = PUBLIC  # anonymous clients may read public topics; private ones check the session

    @websocket("/ws")
    async def socket(
        self, socket: WebSocket[Any, Any, Any], registry: NamedDependency[SocketRegistry]
    ) -> None:
        address = _address(socket)
        if not await _admit(socket, registry, address):
            return
        try:
            viewer = Viewer(await connect_session(socket, registry))
            follow = HtmlFollow(_renderer(socket))
        except BadCredential as exc:
            registry.release(address)
            await socket.close(code=UNAUTHORIZED, reason=str(exc)[:100])
            return
        except BaseException:
            registry.release(address)
            raise
        await _hand_over(socket, registry, address, viewer, follow)

    @websocket("/ws/html")
    async def html(
        self, socket: WebSocket[Any, Any, Any], registry: NamedDependency[SocketRegistry]
    ) -> None:
        """Fragments for a page without the hub client (htmx ``ws-connect``)."""
        address = _address(socket)
        if not await _admit(socket, registry, address):
            return
        try:
            topics = html_topics(socket.query_params.get("topics", ""))
        except TopicError as exc:
            registry.release(address)
            await socket.close(code=POLICY_VIOLATION, reason=exc.message[:100])
            return
        renderer = _renderer(socket)
        wire = wire_of(socket.scope)
        link: Any = wire if wire is not None else AsgiLink(socket)
        connection = HtmlConnection(registry, _FragmentLink(link, renderer), address, Viewer(None))
        registry.add(connection)
        try:
            for topic in topics:
                await registry.hub.subscribe(connection.subscriber, topic, None, None)
        except (RedisError, OSError) as exc:
            log.warning("hub_subscribe_failed", error=repr(exc))
            connection.on_closed()
            await socket.close(code=INTERNAL_ERROR, reason="try again shortly")
            return
        except BaseException:
            connection.on_closed()
            raise
        connection.idle_since = None  # a page that only listens is not idle
        if wire is not None:
            wire.detach(connection)
        else:
            await link.pump(connection)


def _address(socket: WebSocket[Any, Any, Any]) -> str:
    client = socket.scope.get("client")
    return client[0] if client else "unknown"


async def _admit(socket: WebSocket[Any, Any, Any], registry: SocketRegistry, address: str) -> bool:
    """Accept the handshake; past the address's share, close at once with 4029 so the client
    can tell why (a refused handshake would only say 403)."""
    await socket.accept()
    if registry.admit(address):
        return True
    await socket.close(code=TOO_MANY_SOCKETS, reason="too many sockets from this address")
    return False


async def _hand_over(
    socket: WebSocket[Any, Any, Any],
    registry: SocketRegistry,
    address: str,
    viewer: Viewer,
    follow: HtmlFollow,
) -> None:
    wire = wire_of(socket.scope)
    if wire is not None:
        connection = Connection(registry, wire, address, viewer, follow)
        registry.add(connection)
        wire.detach(connection)
        return
    link = AsgiLink(socket)
    connection = Connection(registry, link, address, viewer, follow)
    registry.add(connection)
    await link.pump(connection)


def _renderer(socket: WebSocket[Any, Any, Any]) -> FragmentRenderer:
    engine = socket.app.template_engine
    assert engine is not None  # configured in backend/app.py
    return FragmentRenderer(lambda name, context: engine.get_template(name).render(**context))


class _FragmentLink:
    """A link for htmx pages: each JSON frame becomes its rendered fragment, or nothing."""

    __slots__ = ("_link", "_renderer")

    def __init__(self, link: Any, renderer: FragmentRenderer) -> None:
        self._link, self._renderer = link, renderer

    def send_item(self, item: Outgoing) -> None:
        fragment = self._renderer.fragment(item.text)
        if fragment is not None:
            self._link.send_item(shared_frame(fragment))

    @property
    def is_paused(self) -> bool:
        return bool(self._link.is_paused)

    def close(self, code: int, reason: str) -> None:
        self._link.close(code, reason)


class AsgiLink:
    """The plain-ASGI link, for servers other than ours: queued frames and a writer task."""

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        self._socket = socket
        self._queue: deque[str] = deque()
        self._bytes = 0
        self._wakeup = asyncio.Event()
        self._closing = asyncio.Event()
        self._close_with = (NORMAL_CLOSURE, "")
        self._peer: Connection | None = None
        self.is_paused = False

    def send_item(self, item: Outgoing) -> None:
        if not self._closing.is_set():
            self._queue.append(item.text)
            self._bytes += len(item.text)
            self.is_paused = self.is_paused or self._bytes > STATE_BACKLOG
            self._wakeup.set()

    def close(self, code: int, reason: str) -> None:
        if not self._closing.is_set():
            self._close_with = (code, reason)
            self._closing.set()

    async def pump(self, peer: Connection) -> None:
        """Read into ``peer`` and write its frames until either side ends."""
        self._peer = peer
        writer = asyncio.create_task(self._write(), name="ws-writer")
        reader = asyncio.create_task(self._read(peer), name="ws-reader")
        closing = asyncio.create_task(self._closing.wait(), name="ws-closing")
        tasks = (writer, reader, closing)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if closing in done:
                # The writer may be stuck in a send to this very client: cut it off rather
                # than wait for it, and give the close frame a bounded time.
                writer.cancel()
                code, reason = self._close_with
                await asyncio.wait_for(self._socket.close(code=code, reason=reason), CLOSE_WAIT)
        except (WebSocketDisconnect, RuntimeError, TimeoutError):
            pass  # the client is gone, or never read its close frame
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            peer.on_closed()

    async def _read(self, peer: Connection) -> None:
        try:
            while True:
                peer.on_text(await self._socket.receive_text())
        except WebSocketDisconnect:
            pass

    async def _write(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    text = self._queue.popleft()
                    self._bytes -= len(text)
                    await self._socket.send_text(text)
                    if self.is_paused and self._bytes <= STATE_BACKLOG // 4:
                        self.is_paused = False  # as a transport resumes at its low-water mark
                        if self._peer is not None:
                            self._peer.on_drained()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client is gone
