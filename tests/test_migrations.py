"""Migrations run up and down on SQLite and PostgreSQL, and match the models exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from backend.config import Settings
from backend.db import migrate
from backend.db.engine import create_engine
from backend.db.models import metadata
from tests.conftest import make_settings, temporary_database


def _drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def check_round_trip(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await migrate.upgrade_async(settings)
        async with engine.connect() as connection:
            assert await connection.run_sync(_drift) == []
            assert {"users", "audit_log"} <= await connection.run_sync(_tables)
        await migrate.downgrade_async(settings, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()
        await migrate.upgrade_async(settings)
        async with engine.connect() as connection:
            assert {"users", "audit_log"} <= await connection.run_sync(_tables)
    finally:
        await engine.dispose()


async def test_sqlite_migrations_match_models_and_reverse_cleanly(tmp_path: Path) -> None:
    await check_round_trip(make_settings(tmp_path))


async def test_postgres_migrations_match_models_and_reverse_cleanly(tmp_path: Path) -> None:
    async with temporary_database() as url:
        await check_round_trip(make_settings(tmp_path, database={"url": url}))
