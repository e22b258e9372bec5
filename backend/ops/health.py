"""Liveness, readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Response, get
from litestar.di import NamedDependency
from redis.asyncio import Redis
from sqlalchemy import text

from backend.db.engine import Database

# A dependency that does not answer in this time is as good as down for a load balancer.
READY_TIMEOUT_SECONDS = 2.0


class HealthController(Controller):
    include_in_schema = True
    tags = ["ops"]
    opt = {"exclude_from_auth": True}

    @get("/healthz", media_type=MediaType.JSON)
    async def healthz(self) -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @get("/readyz", media_type=MediaType.JSON)
    async def readyz(
        self, db: NamedDependency[Database], redis: NamedDependency[Redis | None]
    ) -> Response[dict[str, Any]]:
        """The database and Redis (when configured) answer."""
        checks = {"database": await _check(_ping_database(db))}
        if redis is not None:
            checks["redis"] = await _check(redis.ping())
        ready = all(value == "ok" for value in checks.values())
        return Response(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )


async def _ping_database(db: Database) -> None:
    async with db.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
