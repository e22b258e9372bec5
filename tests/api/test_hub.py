"""The live hub over real WebSockets, on the memory backend and on Redis."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from backend.hub.backends.base import HISTORY_LENGTH
from tests.helpers import (
    RunningServer,
    Server,
    hub_of,
    make_settings,
    receive,
    send,
    signed_in,
    subscribe,
    ws_url,
)

TRADES = "trades:TON-USDT"


async def read_until_closed(ws: ClientConnection, within: float = 15) -> list[dict[str, Any]]:
    """Every frame until the server closes the connection (which must happen in time)."""
    frames = []
    try:
        while True:
            frames.append(await receive(ws, within))
    except websockets.ConnectionClosed:
        return frames


async def test_events_arrive_in_order_with_rising_seq(server: Server, telegram_id: int) -> None:
    topic = f"trades:T{telegram_id}-USDT"
    async with websockets.connect(ws_url(server)) as ws:
        start = await subscribe(ws, topic)
        assert start["seq"] == 0 and start["recovered"] is False
        for i in range(5):
            assert await hub_of(server).publish(topic, "event", {"n": i}) == i + 1
        frames = [await receive(ws) for _ in range(5)]
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert [f["data"]["n"] for f in frames] == [0, 1, 2, 3, 4]
    assert {f["type"] for f in frames} == {"event"} and {f["topic"] for f in frames} == {topic}


async def test_state_topics_start_with_a_snapshot(server: Server, telegram_id: int) -> None:
    topic = f"book:B{telegram_id}-USDT"
    hub = hub_of(server)
    await hub.publish(topic, "delta", {"bids": [["1.0", "2"]]}, state={"bids": [["1.0", "2"]]})
    await hub.publish(topic, "delta", {"bids": [["1.1", "1"]]}, state={"bids": [["1.1", "1"]]})
    async with websockets.connect(ws_url(server)) as ws:
        answer = await subscribe(ws, topic)
        snapshot = await receive(ws)
        assert answer["seq"] == 2 and answer["recovered"] is False
        assert snapshot == {
            "topic": topic,
            "seq": 2,
            "type": "snapshot",
            "data": {"bids": [["1.1", "1"]]},
        }
        await hub.publish(topic, "delta", {"bids": []}, state={"bids": []})
        assert (await receive(ws))["seq"] == 3


async def test_a_reconnecting_client_gets_exactly_what_it_missed(
    server: Server, telegram_id: int
) -> None:
    topic = f"trades:R{telegram_id}-USDT"
    hub = hub_of(server)
    async with websockets.connect(ws_url(server)) as ws:
        answer = await subscribe(ws, topic)
        await hub.publish(topic, "event", {"n": 1})
        seen = await receive(ws)
    for n in range(2, 5):
        await hub.publish(topic, "event", {"n": n})
    async with websockets.connect(ws_url(server)) as ws:
        resumed = await subscribe(ws, topic, since={topic: seen["seq"]}, epoch=answer["epoch"])
        missed = [await receive(ws) for _ in range(3)]
        await hub.publish(topic, "event", {"n": 5})
        live = await receive(ws)
    assert resumed["recovered"] is True and resumed["seq"] == 4
    assert [m["data"]["n"] for m in missed] == [2, 3, 4] and live["seq"] == 5


async def test_resume_beyond_the_history_falls_back_to_a_snapshot(
    server: Server, telegram_id: int
) -> None:
    topic = f"book:H{telegram_id}-USDT"
    hub = hub_of(server)
    for n in range(HISTORY_LENGTH + 150):
        await hub.publish(topic, "delta", {"n": n}, state={"n": n})
    async with websockets.connect(ws_url(server)) as ws:
        answer = await subscribe(ws, topic, since={topic: 1})
        snapshot = await receive(ws)
    assert answer["recovered"] is False and snapshot["type"] == "snapshot"
    assert snapshot["data"] == {"n": HISTORY_LENGTH + 149}


async def test_a_foreign_epoch_cannot_resume(server: Server, telegram_id: int) -> None:
    topic = f"trades:E{telegram_id}-USDT"
    await hub_of(server).publish(topic, "event", {})
    async with websockets.connect(ws_url(server)) as ws:
        answer = await subscribe(ws, topic, since={topic: 0}, epoch="another-epoch")
    assert answer["recovered"] is False and answer["seq"] == 1


async def test_private_topics_only_for_their_owner(
    server: Server, client: Any, telegram_id: int, new_telegram_id: Any
) -> None:
    user, headers = await signed_in(client, telegram_id)
    other, _ = await signed_in(client, new_telegram_id())
    token = headers["Authorization"].removeprefix("Bearer ")
    mine, theirs = f"user:{user['id']}", f"user:{other['id']}"

    async with websockets.connect(ws_url(server)) as anonymous:
        await send(anonymous, op="subscribe", topics=[mine])
        assert (await receive(anonymous))["code"] == "forbidden"

    for how in (
        {"additional_headers": headers},
        {"additional_headers": {"Cookie": f"simplrefq_session={token}"}},
        {"auth_frame": token},
    ):
        frame = how.pop("auth_frame", None)
        async with websockets.connect(ws_url(server), **how) as ws:
            if frame is not None:
                await send(ws, op="auth", token=frame)
                assert await receive(ws) == {"op": "authed", "user_id": user["id"]}
            await subscribe(ws, mine)
            await send(ws, op="subscribe", topics=[theirs])
            refused = await receive(ws)
            assert (refused["op"], refused["code"]) == ("error", "forbidden")
            await hub_of(server).publish(mine, "event", {"kind": "fill"})
            assert (await receive(ws))["data"] == {"kind": "fill"}


async def test_bad_input_gets_errors_and_the_connection_lives(server: Server) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        for raw, code in (
            ("{not json", "bad_json"),
            ('{"op": "dance"}', "bad_op"),
            ('{"op": "subscribe", "topics": "prices"}', "bad_op"),
            ('{"op": "subscribe", "topics": ["nope:1"]}', "unknown_topic"),
            ('{"op": "subscribe", "topics": ["user:abc"]}', "unknown_topic"),
        ):
            await ws.send(raw)
            answer = await receive(ws)
            assert (answer["op"], answer["code"]) == ("error", code), raw
        await send(ws, op="ping")
        assert await receive(ws) == {"op": "pong"}


async def test_an_oversized_frame_closes_with_1009(server: Server) -> None:
    async with websockets.connect(ws_url(server), max_size=None) as ws:
        await ws.send("x" * (256 * 1024))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_flood_of_operations_is_refused_then_disconnected(server: Server) -> None:
    async with websockets.connect(ws_url(server)) as ws:
        for _ in range(300):
            await send(ws, op="ping")
        answers = await read_until_closed(ws)
    codes = {answer.get("code") or answer["op"] for answer in answers}
    assert codes == {"rate_limited", "pong"}
    assert ws.close_code == 1008


async def test_a_slow_consumer_is_cut_off_and_nobody_else_waits(
    server: Server, telegram_id: int
) -> None:
    await slow_consumer_is_cut_off(server, telegram_id)


async def test_the_hub_runs_on_a_plain_asgi_websocket_too(tmp_path: Path, telegram_id: int) -> None:
    """Without our uvicorn protocol (wire.py) the route keeps the socket on its ASGI task."""
    async with RunningServer(make_settings(tmp_path), ws="websockets-sansio") as plain:
        topic = f"trades:P{telegram_id}-USDT"
        async with websockets.connect(ws_url(plain)) as ws:
            assert (await subscribe(ws, topic))["seq"] == 0
            for n in range(20):
                await hub_of(plain).publish(topic, "event", {"n": n})
            frames = [await receive(ws) for _ in range(20)]
            assert [f["seq"] for f in frames] == list(range(1, 21))
            await send(ws, op="ping")
            assert await receive(ws) == {"op": "pong"}
            await send(ws, op="unsubscribe", topics=[topic])
            await send(ws, op="ping")
            assert await receive(ws) == {"op": "pong"}  # operations are taken in order
            await hub_of(plain).publish(topic, "event", {"n": "gone"})
            await send(ws, op="ping")
            assert await receive(ws) == {"op": "pong"}  # nothing of the topic came first
        await slow_consumer_is_cut_off(plain, telegram_id)


async def test_a_slow_consumer_of_small_frames_is_cut_off_too(
    server: Server, telegram_id: int
) -> None:
    """Small frames: the kernel's buffers must not hide the backlog until a ping times out."""
    await slow_consumer_is_cut_off(server, telegram_id, frame_bytes=1024, frames=2500)


async def slow_consumer_is_cut_off(
    server: Server, telegram_id: int, frame_bytes: int = 32 * 1024, frames: int = 1200
) -> None:
    topic = f"trades:{'S' if frame_bytes > 4096 else 'Q'}{telegram_id}-USDT"
    hub = hub_of(server)
    # Random bytes as base64: no compression shrinks them.
    blob = base64.b64encode(os.urandom(frame_bytes * 3 // 4)).decode()
    # A phone on a bad link: a small receive window, and it reads nothing for a while.
    host, port = server.url.removeprefix("http://").split(":")
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    small.connect((host, int(port)))
    async with (
        websockets.connect(ws_url(server), sock=small, max_queue=1) as slow,
        websockets.connect(ws_url(server)) as healthy,
    ):
        await subscribe(slow, topic)
        await subscribe(healthy, topic)
        received = 0

        async def keep_up() -> None:
            nonlocal received
            while received < frames:
                await receive(healthy)
                received += 1

        reader = asyncio.create_task(keep_up())
        for n in range(frames):
            await hub.publish(topic, "event", {"n": n, "blob": blob})
            if n % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(reader, 20)
        assert received == frames
        got = await read_until_closed(slow)
    assert (slow.close_code, slow.close_reason) == (4008, "slow consumer")
    assert len(got) < frames  # it was cut off, not served to the end


async def test_a_burst_of_subscribers_all_get_their_messages(
    server: Server, telegram_id: int
) -> None:
    """More concurrent subscribes than the server holds Redis connections: none fails, none
    is left on a topic that never delivers."""
    topics = [f"trades:C{telegram_id}{n}-USDT" for n in range(3)]
    clients = [await websockets.connect(ws_url(server)) for _ in range(150)]
    try:
        await asyncio.gather(
            *(send(ws, op="subscribe", topics=[topics[i % 3]]) for i, ws in enumerate(clients))
        )
        answers = await asyncio.gather(*(receive(ws) for ws in clients))
        assert {a["op"] for a in answers} == {"subscribed"}
        for topic in topics:
            await hub_of(server).publish(topic, "event", {"to": topic})
        frames = await asyncio.gather(*(receive(ws) for ws in clients))
        assert [f["data"]["to"] for f in frames] == [topics[i % 3] for i in range(150)]
    finally:
        await asyncio.gather(*(ws.close() for ws in clients))


async def test_html_mode_sends_fragments_rendered_for_htmx(server: Server) -> None:
    hub = hub_of(server)
    markets = {"TON-USDT": {"price": "5.2031", "change_24h": "-1.25", "ts": 1}}
    await hub.publish("prices", "delta", {"markets": markets}, state={"markets": markets})
    url = ws_url(server).replace("/ws", "/ws/html") + "?topics=prices"
    async with websockets.connect(url) as ws:
        status = await asyncio.wait_for(ws.recv(), 5)
        ticker = await asyncio.wait_for(ws.recv(), 5)
        assert 'id="live-status"' in status and 'data-state="live"' in status
        assert 'id="ticker"' in ticker and 'hx-swap-oob="true"' in ticker
        assert "5.2031" in ticker and "-1.25%" in ticker and 'class="ticker-change down"' in ticker
        await ws.send('{"anything": "htmx sends"}')  # input is ignored, the page stays
        markets["TON-USDT"]["price"] = "5.3000"
        await hub.publish("prices", "delta", {"markets": markets}, state={"markets": markets})
        assert "5.3000" in await asyncio.wait_for(ws.recv(), 5)


async def test_the_json_socket_follows_frames_with_fragments_when_asked(server: Server) -> None:
    hub = hub_of(server)
    markets = {"TON-USDT": {"price": "5.2031", "change_24h": "-1.25", "ts": 1}}
    await hub.publish("prices", "delta", {"markets": markets}, state={"markets": markets})
    async with websockets.connect(ws_url(server)) as ws:
        answer = await subscribe(ws, "prices", html=["prices"])
        snapshot, fragment = await receive(ws), await receive(ws)
        assert snapshot["type"] == "snapshot" and snapshot["seq"] == answer["seq"]
        assert fragment["op"] == "html" and fragment["topic"] == "prices"
        assert fragment["seq"] == answer["seq"]
        assert 'id="ticker"' in fragment["html"] and "5.2031" in fragment["html"]
        markets["TON-USDT"]["price"] = "5.3000"
        seq = await hub.publish("prices", "delta", {"markets": markets}, state={"markets": markets})
        delta, fragment = await receive(ws), await receive(ws)
        assert (delta["seq"], fragment["seq"]) == (seq, seq) and "5.3000" in fragment["html"]
        # Topics without a fragment are refused; after an unsubscribe no fragment follows.
        await send(ws, op="subscribe", topics=[TRADES], html=[TRADES])
        assert (await receive(ws))["code"] == "unknown_topic"
        await send(ws, op="unsubscribe", topics=["prices"])
        await subscribe(ws, "prices")
        assert (await receive(ws))["type"] == "snapshot"
        await hub.publish("prices", "delta", {"markets": markets}, state={"markets": markets})
        assert "op" not in await receive(ws)
        await send(ws, op="ping")
        assert await receive(ws) == {"op": "pong"}


async def test_html_mode_refuses_topics_without_fragments(server: Server) -> None:
    for query in ("user:1", "trades:TON-USDT", "nope"):
        url = ws_url(server).replace("/ws", "/ws/html") + f"?topics={query}"
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008, query


async def test_a_socket_that_subscribes_to_nothing_is_reaped(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("backend.hub.connection.IDLE_SECONDS", 0.3)
    async with (
        websockets.connect(ws_url(server)) as idle,
        websockets.connect(ws_url(server)) as busy,
    ):
        await subscribe(busy, "trades:IDLE-USDT")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(idle.recv(), 5)
        assert (idle.close_code, idle.close_reason) == (1000, "idle")
        await asyncio.sleep(0.5)
        await send(busy, op="ping")
        assert await receive(busy) == {"op": "pong"}  # a subscribed socket stays
