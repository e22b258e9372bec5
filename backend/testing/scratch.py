"""What the benchmarks stand up: a scratch PostgreSQL database, users in it, a server that is
ready."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type hints

_USER_COLUMNS = (
    "telegram_id", "first_name", "role", "referral_code", "is_demo", "is_premium",
    "created_at", "last_seen_at",
)  # fmt: skip
# The server the tests and the benchmarks make their scratch databases on.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# A Redis database of the benchmarks' own: the tests use number 9.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


async def create_database() -> tuple[str, str]:
    """A fresh database; returns its name and its asyncpg URL."""
    name = f"simplrefq_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def insert_users(url: str, count: int, first_telegram_id: int) -> list[int]:
    """``count`` users straight into the users table (COPY); returns their ids in order."""
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    now = datetime.now(UTC)
    try:
        await admin.copy_records_to_table(
            "users",
            columns=_USER_COLUMNS,
            records=[
                (first_telegram_id + i, "bench", "user", f"b{first_telegram_id + i}", False,
                 False, now, now)
                for i in range(count)
            ],
        )  # fmt: skip
        rows = await admin.fetch("SELECT id FROM users ORDER BY id")
    finally:
        await admin.close()
    return [row["id"] for row in rows]


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until /readyz answers 200; fails early if the server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become ready")
