"""WebSocket transport of the hub: ``GET /ws`` speaks the JSON protocol (protocol.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import jwt
import structlog
from litestar import Controller, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from redis.exceptions import RedisError

from backend.auth.sessions import COOKIE_NAME, PUBLIC
from backend.hub import protocol
from backend.hub.html import FragmentRenderer, html_topics
from backend.hub.hub import Hub
from backend.hub.subscriber import SLOW_CONSUMER, Subscriber
from backend.hub.topics import TopicError, check_access, parse_topic
from backend.ops.metrics import websocket_connections

log = structlog.get_logger(__name__)

# A client subscribes a handful of topics when a tab opens: 20 operations at once and 10 a
# second after that is generous; beyond it operations are refused, and a client that keeps
# flooding (100 refused) is disconnected with 1008.
OPS_BURST = 20
OPS_PER_SECOND = 10.0
OPS_REFUSED_LIMIT = 100
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
NORMAL_CLOSURE = 1000
# A socket that subscribes to nothing for this long is a leftover tab or a scanner: its slot
# is worth more to someone else.  (Half-open sockets are reaped by uvicorn's 20 s pings.)
IDLE_SECONDS = 60.0
# A page that is this far behind should skip to the newest state rather than replay it.
HTML_MAX_PENDING = 16
# A client being closed for falling behind gets this long to read what is queued before it
# and the close frame; after that the connection is dropped.
CLOSE_WAIT = 10.0


class HubController(Controller):
    opt = PUBLIC  # anonymous clients may read public topics; private ones check the token

    @websocket("/ws")
    async def socket(self, socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        hub: Hub = socket.app.state.resources.hub
        user_id = _user_id(socket)

        async def send(text: str) -> None:
            await socket.send_text(text)

        subscriber = Subscriber(send, hub.resubscribe)
        await _serve(socket, hub, subscriber, _read(socket, hub, subscriber, user_id))

    @websocket("/ws/html")
    async def html(self, socket: WebSocket[Any, Any, Any]) -> None:
        """Fragments for the mini-app page (htmx ``ws-connect="/ws/html?topics=prices"``)."""
        await socket.accept()
        hub: Hub = socket.app.state.resources.hub
        try:
            topics = html_topics(socket.query_params.get("topics", ""))
        except TopicError as exc:
            await socket.close(code=POLICY_VIOLATION, reason=exc.message[:100])
            return
        engine = socket.app.template_engine
        assert engine is not None  # configured in backend/app.py
        renderer = FragmentRenderer(
            lambda name, context: engine.get_template(name).render(**context)
        )

        async def send(text: str) -> None:
            fragment = renderer.fragment(text)
            if fragment is not None:
                await socket.send_text(fragment)

        subscriber = Subscriber(send, hub.resubscribe, max_pending=HTML_MAX_PENDING)
        try:
            for topic in topics:
                await hub.subscribe(subscriber, topic, None, None)
        except (RedisError, OSError) as exc:
            log.warning("hub_subscribe_failed", error=repr(exc))
            await hub.leave(subscriber)
            await socket.close(code=INTERNAL_ERROR, reason="try again shortly")
            return
        await _serve(socket, hub, subscriber, _ignore_input(socket))


async def _serve(
    socket: WebSocket[Any, Any, Any],
    hub: Hub,
    subscriber: Subscriber,
    read: Coroutine[Any, Any, None],
) -> None:
    """Run a connection: its writer, its reader, and the slow-consumer watch; close cleanly."""
    websocket_connections.inc()
    writer = asyncio.create_task(subscriber.run(), name="ws-writer")
    reader = asyncio.create_task(read, name="ws-reader")
    overflow = asyncio.create_task(subscriber.overflowed.wait(), name="ws-overflow")
    tasks = {writer, reader, overflow}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        close = None
        failure = reader.exception() if reader in done else None
        if overflow in done:
            close = (SLOW_CONSUMER, "slow consumer")
        elif isinstance(failure, _Flooding):
            close = (POLICY_VIOLATION, "too many operations")
        elif isinstance(failure, _Idle):
            close = (NORMAL_CLOSURE, "idle")
        elif failure is not None and not isinstance(failure, WebSocketDisconnect):
            log.error("ws_reader_failed", exc_info=failure)
            close = (INTERNAL_ERROR, "internal error")
        if close is not None:
            writer.cancel()
            await asyncio.wait_for(socket.close(code=close[0], reason=close[1]), CLOSE_WAIT)
    except (WebSocketDisconnect, RuntimeError, TimeoutError):
        pass  # the client is gone, or never read its close frame
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.leave(subscriber)
        websocket_connections.dec()


class _Flooding(Exception):
    pass


class _Idle(Exception):
    pass


async def _ignore_input(socket: WebSocket[Any, Any, Any]) -> None:
    """HTML pages only listen; whatever htmx sends (form values) is read and dropped."""
    while True:
        await socket.receive_text()


async def _read(
    socket: WebSocket[Any, Any, Any], hub: Hub, subscriber: Subscriber, user_id: int | None
) -> None:
    tokens, refilled, refused = float(OPS_BURST), time.monotonic(), 0
    while True:
        if subscriber.topics:
            raw = await socket.receive_text()
        else:
            try:
                raw = await asyncio.wait_for(socket.receive_text(), IDLE_SECONDS)
            except TimeoutError:
                raise _Idle from None
        now = time.monotonic()
        tokens = min(OPS_BURST, tokens + (now - refilled) * OPS_PER_SECOND)
        refilled = now
        if tokens < 1:
            refused += 1
            if refused >= OPS_REFUSED_LIMIT:
                raise _Flooding
            subscriber.control(protocol.error("rate_limited", "too many operations; slow down"))
            continue
        tokens -= 1
        try:
            operation = protocol.decode_operation(raw)
        except protocol.ProtocolError as exc:
            subscriber.control(protocol.error(exc.code, exc.message))
            continue
        if isinstance(operation, protocol.Ping):
            subscriber.control(protocol.PONG)
        elif isinstance(operation, protocol.Subscribe):
            await _subscribe(hub, subscriber, operation, user_id)
        else:
            for name in operation.topics:
                await hub.unsubscribe(subscriber, name)


async def _subscribe(
    hub: Hub, subscriber: Subscriber, operation: protocol.Subscribe, user_id: int | None
) -> None:
    for name in operation.topics:
        try:
            topic = parse_topic(name)
            check_access(topic, user_id)
        except TopicError as exc:
            subscriber.control(protocol.error(exc.code, exc.message))
            continue
        if topic.name in subscriber.topics:
            continue
        if len(subscriber.topics) >= protocol.MAX_TOPICS_PER_CONNECTION:
            subscriber.control(protocol.error("too_many_topics", "unsubscribe something first"))
            return
        try:
            await hub.subscribe(subscriber, topic, operation.since.get(topic.name), operation.epoch)
        except (RedisError, OSError) as exc:
            log.warning("hub_subscribe_failed", topic=topic.name, error=repr(exc))
            subscriber.control(protocol.error("unavailable", f"{topic.name}: try again shortly"))


def _user_id(socket: WebSocket[Any, Any, Any]) -> int | None:
    """The signed-in user, from a Bearer header, the session cookie or ``?token=``."""
    header = socket.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    token = token or socket.cookies.get(COOKIE_NAME) or socket.query_params.get("token")
    if not token:
        return None
    auth = socket.app.state.auth
    try:
        claims = jwt.decode(
            token,
            auth.token_secret,
            algorithms=[auth.algorithm],
            options={"require": ["exp", "sub"]},
        )
        return int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return None
