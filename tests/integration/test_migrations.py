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
from backend.db.migrations.tables import metadata
from tests.helpers import make_settings, temporary_database


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


_USER = (
    "INSERT INTO users (id, telegram_id, first_name, role, referral_code, referred_by_id,"
    " is_premium, is_demo, created_at, last_seen_at)"
    " VALUES ({id}, {id}00, 'A', 'user', 'code{id}', {ref}, 0, 0,"
    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)


async def test_sqlite_users_rebuild_keeps_rows_and_never_reuses_ids(tmp_path: Path) -> None:
    """0007 rebuilds users on SQLite with AUTOINCREMENT: the rows, and the rows of tables
    that reference them (CASCADE, SET NULL, RESTRICT), come through untouched."""
    settings = make_settings(tmp_path)
    await migrate.upgrade_async(settings, "0006")
    engine = create_engine(settings)
    sql = ""
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(_USER.format(id=1, ref="NULL"))
            await connection.exec_driver_sql(_USER.format(id=2, ref=1))
            await connection.exec_driver_sql(
                "INSERT INTO notification_settings (user_id, muted, digest, time_zone,"
                " updated_at) VALUES (2, '[]', '[]', 'UTC', '2026-01-01 00:00:00')"
            )
            await connection.exec_driver_sql(
                "INSERT INTO audit_log (at, actor_id, action, target, details)"
                " VALUES ('2026-01-01 00:00:00', 1, 'x', '', '{}')"
            )
        await migrate.upgrade_async(settings)
        async with engine.begin() as connection:
            rows = await connection.exec_driver_sql("SELECT id, referred_by_id FROM users")
            assert sorted(rows.all()) == [(1, None), (2, 1)]
            for table in ("notification_settings", "audit_log"):
                kept = await connection.exec_driver_sql(f"SELECT count(*) FROM {table}")  # noqa: S608
                assert kept.scalar() == 1, table
            schema = await connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'users'"
            )
            sql = str(schema.scalar())
            await connection.exec_driver_sql("DELETE FROM notification_settings")
            await connection.exec_driver_sql("DELETE FROM users WHERE id = 2")
            await connection.exec_driver_sql(
                _USER.format(id=3, ref="NULL").replace("(3,", "(NULL,")
            )
            newest = await connection.exec_driver_sql("SELECT max(id) FROM users")
            assert newest.scalar() == 3  # the deleted 2 is not handed out again
    finally:
        await engine.dispose()
    assert "AUTOINCREMENT" in sql and "ck_users_role" in sql and "UNIQUE" in sql
