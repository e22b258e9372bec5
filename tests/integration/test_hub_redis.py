"""The hub across processes and through Redis faults; the market feed on the hub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets
from redis.exceptions import RedisError

from backend.config import Settings
from backend.hub.backends.base import Message
from backend.hub.backends.redis import RedisBackend
from backend.hub.hub import Hub
from tests.helpers import (
    REDIS_PREFIX,
    RunningServer,
    make_settings,
    receive,
    send,
    subscribe,
    with_backend,
    ws_url,
)


def redis_settings(tmp_path: Path, postgres_url: str, redis_url: str, name: str) -> Settings:
    """PostgreSQL + Redis, with Redis keys of this test alone."""
    redis = {"url": redis_url, "key_prefix": f"{REDIS_PREFIX}-{name}"}
    # No books: the session's server runs them on this database (one term at a time).
    return make_settings(
        tmp_path, database={"url": postgres_url}, redis=redis, trading={"enabled": False}
    )


async def test_the_market_feed_streams_prices_and_candles(
    backend: dict[str, Any], tmp_path: Path
) -> None:
    market = {"feed": "simulator", "interval_seconds": 0.05}
    env = with_backend(backend, market=market, trading={"enabled": False})
    if "redis" in env:
        # Keys of its own: the session's server holds the feed's lease on the shared prefix.
        env["redis"] = {**env["redis"], "key_prefix": f"{REDIS_PREFIX}-feed"}
    settings = make_settings(tmp_path, **env)
    async with RunningServer(settings) as server, websockets.connect(ws_url(server)) as ws:
        await asyncio.sleep(0.2)
        answer = await subscribe(ws, "prices")
        snapshot = await receive(ws)
        assert answer["recovered"] is False and snapshot["type"] == "snapshot"
        assert set(snapshot["data"]["markets"]) == {"TON-USDT", "ETH-USDT", "BNB-USDT"}
        delta = await receive(ws)
        assert delta["type"] == "delta" and delta["seq"] == snapshot["seq"] + 1
        await send(ws, op="subscribe", topics=["candles:TON-USDT:1m"])
        frames = [await receive(ws) for _ in range(12)]
        candles = [f for f in frames if f.get("topic") == "candles:TON-USDT:1m" and "type" in f]
        assert candles[0]["type"] == "snapshot" and candles[0]["data"]["market"] == "TON-USDT"
        first = candles[0]["seq"]
        assert [c["seq"] for c in candles] == list(range(first, first + len(candles)))
        # A minute may close meanwhile (an "event"); the running candle comes as deltas.
        deltas = [c for c in candles if c["type"] == "delta"]
        assert deltas and deltas[0]["data"]["candle"]["timeframe"] == "1m"


async def test_one_feed_runs_however_many_servers_share_redis(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"{REDIS_PREFIX}-lead"
    settings = make_settings(
        tmp_path,
        database={"url": postgres_url},
        redis={"url": redis_url, "key_prefix": prefix},
        market={"feed": "simulator", "interval_seconds": 0.1},
        trading={"enabled": False},
    )
    lease = f"leader:{prefix}:market:feed-leader"
    async with RunningServer(settings) as first, RunningServer(settings):
        hub: Hub = first.app.state.resources.hub
        async with websockets.connect(ws_url(first)) as ws:
            await subscribe(ws, "prices")
            frames = [await receive(ws, within=10) for _ in range(2)]
            assert frames[-1]["type"] == "delta"  # the feed is running
        before = await hub.backend.last_seq("prices")
        await asyncio.sleep(2.0)
        published = await hub.backend.last_seq("prices") - before
        # Both servers live in this process: the leader's job is a task named for the lease.
        holders = [task for task in asyncio.all_tasks() if task.get_name() == lease]
    assert len(holders) == 1
    # One feed at 10 ticks a second makes at most about 20 here (fewer on a busy machine);
    # two would make about 40.
    assert 1 <= published <= 26, published


async def test_a_dropped_redis_connection_loses_nothing(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = redis_settings(tmp_path, postgres_url, redis_url, "drop")
    topic = "trades:DROP-USDT"
    admin = aioredis.Redis.from_url(redis_url)
    async with RunningServer(settings) as server, websockets.connect(ws_url(server)) as ws:
        hub: Hub = server.app.state.resources.hub
        await subscribe(ws, topic)
        for n in range(10):
            await hub.publish(topic, "event", {"n": n})
            if n == 3:
                # Cut every pub/sub connection (ours included) in the middle of the stream.
                await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        frames = [await receive(ws, within=10) for _ in range(10)]
        backend = hub.backend
        assert isinstance(backend, RedisBackend) and backend.reconnects >= 1
    await admin.aclose()
    assert [f["seq"] for f in frames] == list(range(1, 11))
    assert [f["data"]["n"] for f in frames] == list(range(10))


async def test_a_burst_of_first_subscribes_leaves_no_topic_silent(redis_url: str) -> None:
    """Many topics' first subscribes at once on a fresh backend whose client is busy, as a
    server's is when its clients arrive: every topic must deliver."""
    redis = aioredis.Redis.from_url(redis_url)
    topics = [f"trades:BURST{n}-USDT" for n in range(16)]
    got: dict[str, list[int]] = {}
    complete = asyncio.Event()

    def deliver(message: Message) -> None:
        got.setdefault(message.topic, []).append(message.seq)
        if all(len(got.get(topic, [])) >= 3 for topic in topics):
            complete.set()

    backend = RedisBackend(redis, f"{REDIS_PREFIX}-burst")
    await backend.start(deliver, lambda _: None)
    quiet = asyncio.Event()

    async def other_traffic() -> None:
        while not quiet.is_set():
            await backend.last_seq("trades:OTHER-USDT")

    traffic = [asyncio.create_task(other_traffic()) for _ in range(16)]
    try:
        await asyncio.sleep(0.02)
        await asyncio.gather(*(backend.listen(topic) for topic in topics))
        quiet.set()
        await asyncio.gather(*traffic)
        for topic in topics:
            for _ in range(3):
                await backend.publish(topic, b'{"seq":', b"}", None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), 5)
    finally:
        quiet.set()
        await backend.close()
        await redis.aclose()
    assert {topic: got.get(topic) for topic in topics} == {topic: [1, 2, 3] for topic in topics}


async def test_listen_unlisten_listen_in_a_row_still_delivers(redis_url: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    got: list[int] = []
    one, two = asyncio.Event(), asyncio.Event()

    def deliver(message: Message) -> None:
        got.append(message.seq)
        one.set()
        if len(got) >= 2:
            two.set()

    backend = RedisBackend(redis, f"{REDIS_PREFIX}-again")
    await backend.start(deliver, lambda _: None)
    topic = "trades:AGAIN-USDT"
    try:
        await backend.listen(topic)
        await backend.unlisten(topic)
        await backend.listen(topic)
        await backend.unlisten(topic)
        listening = asyncio.create_task(backend.listen(topic))
        await backend.unlisten(topic)
        await listening  # nobody waits for it any more: it returns instead of hanging
        await backend.listen(topic)
        await backend.publish(topic, b'{"seq":', b"}", None)
        # Delivery is asynchronous: one published just before an unlisten may or may not come.
        await asyncio.wait_for(one.wait(), 5)
        await backend.unlisten(topic)
        await backend.publish(topic, b'{"seq":', b"}", None)  # not listened: not delivered
        await backend.listen(topic)
        await backend.publish(topic, b'{"seq":', b"}", None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(two.wait(), 5)
        await asyncio.sleep(0.1)  # nothing more may follow
    finally:
        await backend.close()
        await redis.aclose()
    assert got == [1, 3]


async def test_a_subscribe_while_redis_is_down_fails_instead_of_hanging() -> None:
    port = _free_port()  # nothing listens there
    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    backend = RedisBackend(redis, f"{REDIS_PREFIX}-down")
    await backend.start(lambda _: None, lambda _: None)  # the app starts without Redis
    try:
        with pytest.raises(RedisError):
            await asyncio.wait_for(backend.listen("trades:DOWN-USDT"), 10)
    finally:
        await backend.close()
        await redis.aclose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serve(env: dict[str, str], data_dir: Path) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve"],
        env={**env, "APP_PORT": str(port), "APP_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else b""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        yield base.replace("http://", "ws://") + "/ws"
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_two_server_processes_behave_as_one_hub(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"{REDIS_PREFIX}-two"
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "MARKET_FEED": "off",
        "LOG_LEVEL": "WARNING",
    }
    topic = "trades:TWO-USDT"
    with _serve(env, tmp_path / "a") as url_a, _serve(env, tmp_path / "b") as url_b:
        async with websockets.connect(url_a) as on_a, websockets.connect(url_b) as on_b:
            await subscribe(on_a, topic)
            await subscribe(on_b, topic)
            # A third process publishes, as any instance would.
            redis = aioredis.Redis.from_url(redis_url)
            hub = Hub(RedisBackend(redis, prefix))
            await hub.start()
            for n in range(50):
                await hub.publish(topic, "event", {"n": n})
            got_a = [await receive(on_a) for _ in range(50)]
            got_b = [await receive(on_b) for _ in range(50)]
            await hub.close()
            await redis.aclose()
            for ws in (on_a, on_b):
                await ws.send(json.dumps({"op": "ping"}))
                assert await receive(ws) == {"op": "pong"}  # nothing extra was queued before it
    assert [f["seq"] for f in got_a] == [f["seq"] for f in got_b] == list(range(1, 51))
    assert [f["data"]["n"] for f in got_a] == list(range(50))


async def test_lost_redis_data_tells_clients_to_start_over(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Redis restarted without its data: old seqs mean nothing, clients are told to start over."""
    settings = redis_settings(tmp_path, postgres_url, redis_url, "lost")
    topic = "book:LOST-USDT"
    admin = aioredis.Redis.from_url(redis_url)
    async with RunningServer(settings) as server, websockets.connect(ws_url(server)) as ws:
        hub: Hub = server.app.state.resources.hub
        for n in range(3):
            await hub.publish(topic, "delta", {"n": n}, state={"n": n})
        first = await subscribe(ws, topic)
        assert (await receive(ws))["seq"] == 3
        async for key in admin.scan_iter(f"{settings.redis.key_prefix}:*"):
            await admin.delete(key)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await asyncio.sleep(0.5)  # the hub notices the new epoch as it reconnects
        await hub.publish(topic, "delta", {"n": "after"}, state={"n": "after"})
        answer = await receive(ws, within=10)
        following = await receive(ws, within=10)
    await admin.aclose()
    # Start over: nothing survived to resume from, and the sequence begins again.
    assert answer["op"] == "subscribed" and answer["recovered"] is False
    assert answer["epoch"] != first["epoch"] and answer["seq"] == 0
    assert following["seq"] == 1 and following["data"] == {"n": "after"}
