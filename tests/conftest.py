"""Shared fixtures: real PostgreSQL and Redis, the app served by uvicorn on loopback.

Every HTTP test runs once on the embedded default (SQLite, in-process state) and once on the
production pair (PostgreSQL through asyncpg, Redis), through the same test body.  The plain
helpers these fixtures are built from live in tests/helpers.py.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis.asyncio as aioredis

from backend.db.engine import Database
from backend.notify.limiter import MemoryLimiter
from backend.notify.worker import NotificationWorker
from backend.testing.fake_bot_api import FakeBotAPI
from bot.runtime import create_bot
from tests.helpers import (
    BACKENDS,
    IN_CI,
    PER_CHAT,
    PER_SECOND,
    REDIS_PREFIX,
    REDIS_URL,
    WEBHOOK_SECRET,
    RunningServer,
    Server,
    make_settings,
    open_database,
    require,
    settings_for,
    temporary_database,
    with_backend,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


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


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotAPI]:
    """A local server that answers like the Bot API (backend/testing/fake_bot_api.py)."""
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


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own per test: some tests tamper with it on purpose."""
    async with AsyncExitStack() as stack:
        yield await open_database(stack, request.param, tmp_path)


@pytest.fixture
async def worker_factory(db: Database, tmp_path: Path, telegram: FakeBotAPI) -> AsyncIterator[Any]:
    """Makes notification workers on ``db`` that send to the fake Bot API."""
    made: list[Any] = []

    def make(limiter: Any = None, **notify: Any) -> NotificationWorker:
        settings = settings_for(tmp_path, telegram, **notify)
        bot = create_bot(settings)
        made.append(bot)
        return NotificationWorker(db, bot, limiter or MemoryLimiter(PER_SECOND, PER_CHAT), settings)

    yield make
    for bot in made:
        await bot.session.close()


@pytest.fixture
async def bot_server(
    backend: dict[str, Any], tmp_path: Path, telegram: FakeBotAPI
) -> AsyncIterator[Server]:
    """The app with its bot talking to the fake Bot API, updates coming in by webhook."""
    bot = {"api_server": telegram.url, "webhook_secret": WEBHOOK_SECRET}
    settings = make_settings(tmp_path, **with_backend(backend, bot=bot))
    async with RunningServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the phone-size screenshots go (SCREENSHOT_DIR to keep them)."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screens")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session's browser tests."""
    # Imported here: Playwright costs every other test run a fifth of a second to load.
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("Chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        await browser.close()
