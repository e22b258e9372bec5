"""The hub's WebSocket transport: uvicorn's sans-I/O protocol, with a hand-off to the hub.

The route (Litestar, ``/ws``) does the handshake-time work: address cap, credentials, Origin.
It then *detaches* the connection: the ASGI task ends, and from there on the protocol calls
a ``Peer`` for each text message, each time the write buffer drains, and once at the end.
An idle connection then costs its protocol objects and its hub state, with no task, queue
or middleware frames kept alive for it, and frames go out as bytes the hub framed once per
process, written straight to the transport from the fan-out (no per-client task switch).

Servers other than uvicorn (or a route that does not detach) keep the plain ASGI path.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Protocol, cast

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from backend.hub.subscriber import STATE_BACKLOG, Outgoing

# The scope extension through which a route finds the connection's wire.
EXTENSION = "simplrefq.wire"
# What the kernel may hold for a socket before the backlog shows in the transport's buffer,
# where the hub counts it.  Linux doubles the value asked for; autotuning would otherwise let
# a stalled client park megabytes there and only be noticed at the next ping timeout.
SEND_BUFFER_BYTES = 64 * 1024


class Peer(Protocol):
    """The hub's side of a detached connection."""

    def on_text(self, text: str) -> None: ...

    def on_drained(self) -> None: ...

    def on_closed(self) -> None: ...


class HubProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, plus ``detach`` and raw frame writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._peer: Peer | None = None
        self.is_paused = False  # the hub reads it for every frame: a plain attribute

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # The transport pauses past the state-topic backlog and says when it drained.
        transport.set_write_buffer_limits(high=STATE_BACKLOG)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Not a TCP socket (a Unix socket, say): the default is fine.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = self

    # -- what a route calls -------------------------------------------------------------------

    def detach(self, peer: Peer) -> None:
        """From now on ``peer`` gets the connection's messages; the route returns."""
        if self.disconnected:
            peer.on_closed()  # the client left while the route was still at work
            return
        self._peer = peer
        # The handshake's request and response, and the ASGI queue, are no longer needed.
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
        while not self.queue.empty():
            message = self.queue.get_nowait()
            text = message.get("text") if message["type"] == "websocket.receive" else None
            if isinstance(text, str):
                peer.on_text(text)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        if not self.is_paused:
            peer.on_drained()  # a pause and resume before the hand-off went unheard

    @property
    def closed(self) -> bool:
        return (
            self.close_sent
            or self.disconnected
            or self.transport.is_closing()
            or self.conn.state is not State.OPEN  # the client's close frame came first
        )

    def send_item(self, item: Outgoing) -> None:
        """The frame bytes the hub made once, to the transport as they are."""
        if not (self.close_sent or self.disconnected or self.transport.is_closing()):
            self.transport.write(item.frame)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        # The peer gets this long to answer the close frame before the connection is cut:
        # cut, not closed, since closing waits for the send buffer a stalled client never reads.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        # The client answers no ping: it will not read the close frame or the backlog either.
        self.transport.abort()

    # -- uvicorn's callbacks, routed to the peer once detached ---------------------------------

    def send_receive_event_to_app(self) -> None:
        peer = self._peer
        if peer is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type != "text":
            self.close(1003, "text frames only")
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.close(1007, "invalid UTF-8")
            return
        peer.on_text(text)

    def handle_close(self, event: Any) -> None:
        super().handle_close(event)
        if self._peer is not None:
            self._finish()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.is_paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.is_paused = False
        if self._peer is not None:
            self._peer.on_drained()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._finish()

    def _finish(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None:
            peer.on_closed()

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned %r.", result)
        if self._peer is not None:
            self.scope = cast(Any, None)  # the connection lives on without its ASGI task
            return
        if self.close_timer is None:
            self.transport.close()


def wire_of(scope: Any) -> HubProtocol | None:
    """The connection's wire when the server is ours (uvicorn with HubProtocol)."""
    extensions = scope.get("extensions") or {}
    wire = extensions.get(EXTENSION)
    return wire if isinstance(wire, HubProtocol) else None
