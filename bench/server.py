"""What both benchmarks need: a scratch PostgreSQL database and a server that is ready."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
import uuid

import asyncpg

POSTGRES_ADMIN = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def create_database() -> tuple[str, str]:
    """A fresh database; returns its name and its asyncpg URL."""
    name = f"simplrefq_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


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
