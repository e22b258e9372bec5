"""Shared fixtures: real PostgreSQL and Redis, the app served by uvicorn on loopback.

Every HTTP test runs once on the embedded default (SQLite, in-process state) and once on the
production pair (PostgreSQL through asyncpg, Redis), through the same test body.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from litestar import Litestar

from backend.app import create_app
from backend.cli import MAX_WS_FRAME_BYTES, WS_DEFLATE, WS_PROTOCOL
from backend.config import Settings
from backend.db import migrate
from tests.fake_telegram import FakeBotAPI
from tests.telegram import BOT_TOKEN, TEST_PUBLIC_KEY_HEX

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]
# Keys of this test run only; the tests never flush a database another run may be using.
REDIS_PREFIX = f"simplrefq-test-{uuid.uuid4().hex[:8]}"


def require(service: str, reachable: bool, why: str = "") -> None:
    """In CI a missing service is a failure; on a laptop it is a skip with the reason."""
    if reachable:
        return
    message = f"{service} is not reachable ({why})"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def temporary_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (asyncpg URL), dropped afterwards."""
    name = f"simplrefq_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        require("PostgreSQL", False, repr(exc))
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """The PostgreSQL database this test session shares."""
    async with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        require("Redis", False, repr(exc))
    yield REDIS_URL
    # Only this run's keys: other runs (or a developer's app) may share the server.
    async for key in client.scan_iter(f"{REDIS_PREFIX}*"):
        await client.delete(key)
    await client.aclose()


def make_settings(tmp_path: Path, **env: Any) -> Settings:
    """Test settings: our own Ed25519 key stands in for Telegram's; limits high unless asked."""
    values: dict[str, Any] = {
        "app": {"env": "test", "data_dir": tmp_path, "public_url": "https://app.example.test"},
        "auth": {"telegram_public_key": TEST_PUBLIC_KEY_HEX, "jwt_secret": "t" * 40},
        "bot": {"token": BOT_TOKEN, "username": "SimplRefQBot"},
        "ratelimit": {
            "signin_per_ip": "10000/minute",
            "signin_per_user": "10000/minute",
            "write_per_user": "10000/minute",
            "write_per_ip": "10000/minute",
        },
        "log": {"requests": False, "level": "WARNING"},
        # Every test client connects from 127.0.0.1; test_sessions checks the cap itself.
        "hub": {"max_sockets_per_address": 10_000},
        # Tests publish their own messages; test_market_feed runs the simulator on purpose.
        "market": {"feed": "off"},
        # Tests that deliver notifications run a worker against the fake Bot API themselves.
        "notify": {"in_app": False},
        # Tests make their own books; the market maker's quotes would trade with them.
        "trading": {"market_maker": False},
    }
    for group, fields in env.items():
        values.setdefault(group, {}).update(fields)
    return Settings(**values)


@dataclass
class Server:
    """The app served by a real uvicorn on a loopback port."""

    url: str
    app: Litestar
    settings: Settings

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)


class RunningServer:
    def __init__(self, settings: Settings, port: int = 0, ws: str = WS_PROTOCOL) -> None:
        """``port`` 0 picks a free one; a fixed one lets a test restart on the same address.
        ``ws`` is uvicorn's WebSocket protocol: ours unless a test wants a plain one."""
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=bool(settings.app.forwarded_allow_ips),
            forwarded_allow_ips=settings.app.forwarded_allow_ips,
            ws_max_size=MAX_WS_FRAME_BYTES,
            ws_per_message_deflate=WS_DEFLATE,
            ws=ws,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Server:
        await migrate.upgrade_async(self.settings)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return Server(url=f"http://127.0.0.1:{port}", app=self.app, settings=self.settings)

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotAPI]:
    """A local server that answers like the Bot API (tests/fake_telegram.py)."""
    fake = await FakeBotAPI().start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides naming the backend: empty for the embedded default."""
    if request.param == "sqlite":
        return {}
    return {
        "database": {"url": request.getfixturevalue("postgres_url")},
        "redis": {"url": request.getfixturevalue("redis_url"), "key_prefix": REDIS_PREFIX},
    }


def with_backend(backend: dict[str, Any], **env: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {group: dict(fields) for group, fields in backend.items()}
    for group, fields in env.items():
        merged.setdefault(group, {}).update(fields)
    return merged


@pytest.fixture(scope="session")
async def server(
    backend: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    settings = make_settings(tmp_path_factory.mktemp("app"), **backend)
    async with RunningServer(settings) as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as http:
        yield http


_telegram_ids = itertools.count(1_000_000 + os.getpid() * 1000)


@pytest.fixture
def telegram_id() -> int:
    """A Telegram id no other test uses, so tests share one database without colliding."""
    return next(_telegram_ids)


@pytest.fixture
def new_telegram_id() -> Callable[[], int]:
    return lambda: next(_telegram_ids)
