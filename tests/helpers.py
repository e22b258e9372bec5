"""Plain helpers the test modules share: settings, servers, databases, signing in, the hub's
socket, the notification outbox, the bot's webhook, the browser page.

Fixtures live in conftest.py and reach the tests by name; this module holds no fixture.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
import sqlalchemy
import uvicorn
from litestar import Litestar
from sqlalchemy import text
from sqlmodel import select
from websockets.asyncio.client import ClientConnection

from backend.app import create_app
from backend.audit.models import AuditEntry
from backend.auth.signin import sign_in
from backend.cli import MAX_WS_FRAME_BYTES, WS_DEFLATE, WS_PROTOCOL
from backend.config import Settings
from backend.db import migrate
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.hub.hub import Hub
from backend.notify.models import Notification
from backend.notify.service import enqueue
from backend.notify.worker import NotificationWorker
from backend.testing.fake_bot_api import FakeBotAPI
from backend.testing.scratch import POSTGRES_ADMIN_URL
from backend.testing.telegram import BOT_TOKEN, TEST_PUBLIC_KEY_HEX, base_fields, signed_init_data
from backend.users import service
from backend.users.models import Role
from backend.users.service import TelegramProfile

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]
# Keys of this test run only; the tests never flush a database another run may be using.
REDIS_PREFIX = f"simplrefq-test-{uuid.uuid4().hex[:8]}"


# --- services ----------------------------------------------------------------------------------


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


# --- settings and the served app ---------------------------------------------------------------


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


def with_backend(backend: dict[str, Any], **env: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {group: dict(fields) for group, fields in backend.items()}
    for group, fields in env.items():
        merged.setdefault(group, {}).update(fields)
    return merged


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


# --- databases ---------------------------------------------------------------------------------


async def open_database(
    stack: AsyncExitStack, kind: str, tmp_path: Path, **database: Any
) -> Database:
    """A fresh, migrated database of ``kind``, closed (and dropped) when ``stack`` unwinds."""
    if kind == "sqlite":
        settings = make_settings(tmp_path)
    else:
        url = await stack.enter_async_context(temporary_database())
        settings = make_settings(tmp_path, database={"url": url, **database})
    await migrate.upgrade_async(settings)
    db = Database.connect(settings)
    stack.push_async_callback(db.dispose)
    return db


async def counters(db: Database) -> dict[str, tuple[int, int, int, int]]:
    """Every logical account's counters (a system account's shards summed)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT key, debits_pending, debits_posted, credits_pending, credits_posted "
                "FROM ledger_accounts"
            )
        )
        for row in rows:
            key = row.key.rsplit(":", 1)[0] if row.key.startswith("sys:") else row.key
            for index, value in enumerate(row[1:]):
                totals[key][index] += value
    return {key: (v[0], v[1], v[2], v[3]) for key, v in totals.items()}


# --- signing in --------------------------------------------------------------------------------


async def signed_in(client: httpx.AsyncClient, telegram_id: int) -> tuple[dict, dict[str, str]]:
    """Sign in as ``telegram_id``; returns the user and the Authorization header."""
    response = await client.post(
        "/api/auth/telegram", json={"init_data": signed_init_data(base_fields(telegram_id))}
    )
    assert response.status_code in (200, 201), response.text
    body = response.json()
    return body["user"], {"Authorization": f"Bearer {body['token']}"}


async def grant(server: Server, user_id: int, role: Role) -> None:
    """Test setup: the role is written straight to the row, so the user's sessions live on
    (a role change through the API or the CLI ends them, see test_sessions)."""
    async with unit_of_work(server.app.state.resources.db) as uow:
        user = await service.get_user(uow.session, user_id)
        user.role = role.value
        uow.session.add(user)


async def audit_entries(server: Server, action: str) -> list[AuditEntry]:
    async with server.app.state.resources.db.reads() as session:
        result = await session.exec(select(AuditEntry).where(AuditEntry.action == action))
        return list(result.all())


# --- the hub's WebSocket -----------------------------------------------------------------------


def ws_url(server: Server, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/ws" + query


def hub_of(server: Server) -> Hub:
    hub: Hub = server.app.state.resources.hub
    return hub


async def receive(ws: ClientConnection, within: float = 5) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), within)))


async def send(ws: ClientConnection, **op: Any) -> None:
    await ws.send(json.dumps(op))


async def subscribe(ws: ClientConnection, topic: str, **extra: Any) -> dict[str, Any]:
    await send(ws, op="subscribe", topics=[topic], **extra)
    answer = await receive(ws)
    assert answer["op"] == "subscribed" and answer["topic"] == topic, answer
    return answer


# --- the notification outbox -------------------------------------------------------------------

# Fast limits so a test sends dozens of messages in a couple of seconds.
PER_SECOND = 20.0
PER_CHAT = 4.0


def settings_for(tmp_path: Path, telegram: FakeBotAPI, **notify: Any) -> Settings:
    limits = {"per_second": PER_SECOND, "per_chat_per_second": PER_CHAT, "backoff_seconds": 0.1}
    return make_settings(tmp_path, bot={"api_server": telegram.url}, notify={**limits, **notify})


async def users(
    db: Database, count: int, language: str = "en", first: int = 7_000_000
) -> list[int]:
    ids = []
    async with unit_of_work(db) as uow:
        for n in range(count):
            profile = TelegramProfile(first + n, f"user{n}", language_code=language)
            user = (await sign_in(uow, profile)).user
            assert user.id is not None
            ids.append(user.id)
    return ids


async def queue(db: Database, user_id: int, key: str, amount: int = 10) -> None:
    async with unit_of_work(db) as uow:
        await enqueue(uow, user_id, "referral_reward", {"amount": amount, "level": 1}, key)


async def rows(db: Database) -> list[Notification]:
    async with db.reads() as session:
        query = sqlalchemy.select(Notification).order_by(Notification.id)
        result = await session.exec(query)  # type: ignore[call-overload]
        return list(result.scalars())


async def drain(worker: NotificationWorker, db: Database, within: float = 15) -> None:
    """Run the worker until nothing is pending or in flight."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not await worker.run_once():
            open_rows = [r for r in await rows(db) if r.status in ("pending", "sending")]
            if not open_rows:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"not drained: {await rows(db)}")


# --- the bot's webhook -------------------------------------------------------------------------

WEBHOOK_SECRET = "webhook-secret-for-tests"


async def post_update(
    server: Server, update: dict[str, Any], secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    async with server.client() as client:
        return await client.post(
            "/bot/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
        )


async def reply_to(server: Server, telegram: FakeBotAPI, update: dict[str, Any]) -> Any:
    """Post ``update`` and return the sendMessage call it caused."""
    before = len(telegram.sent("sendMessage"))
    await post_update(server, update)
    return (await telegram.wait_for("sendMessage", count=before + 1))[before]


# --- the page in Chromium ----------------------------------------------------------------------

TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js*"


async def open_page(
    browser: Browser, telegram_stub: str | None, timezone_id: str | None = None
) -> tuple[Page, list[str]]:
    """A 360-px phone page; Telegram's script is answered locally (no internet here)."""
    page = await browser.new_page(viewport={"width": 360, "height": 740}, timezone_id=timezone_id)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Failed requests the page expects (no Telegram script, a 401 probe) are not script errors.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )

    async def telegram(route: Route) -> None:
        if telegram_stub is None:
            await route.abort("internetdisconnected")
        else:
            await route.fulfill(body=telegram_stub, content_type="application/javascript")

    await page.route(TELEGRAM_SCRIPT, telegram)
    return page, errors


def telegram_stub(init_data: str, scheme: str = "dark") -> str:
    """Stands in for telegram-web-app.js inside the Telegram client, with signed initData."""
    return f"""
    window.__tg = {{ready: 0, expanded: 0, haptics: 0, handlers: {{}}}};
    window.Telegram = {{ WebApp: {{
      initData: {json.dumps(init_data)}, initDataUnsafe: {{}}, platform: "ios",
      colorScheme: "{scheme}", version: "8.0",
      isVersionAtLeast: () => true,
      ready() {{ window.__tg.ready++; }}, expand() {{ window.__tg.expanded++; }},
      onEvent(name, handler) {{ (window.__tg.handlers[name] ||= []).push(handler); }},
      offEvent() {{}},
      HapticFeedback: {{ selectionChanged() {{ window.__tg.haptics++; }} }},
    }} }};
    """
