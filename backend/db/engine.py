"""One async engine per process, configured for the backend its URL names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.config import Settings


@dataclass(frozen=True, slots=True)
class Database:
    """The engine and its two kinds of session.

    ``sessions`` are transactional: the unit of work commits or rolls them back.
    ``reads`` run in autocommit, for single-statement reads that need no transaction: on
    PostgreSQL that saves the BEGIN and COMMIT round trips on the hottest paths (the session
    lookup of every API request, a returning user's sign-in).
    """

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reads: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(
            engine=engine,
            sessions=async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False),
            reads=async_sessionmaker(autocommit, class_=AsyncSession, expire_on_commit=False),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        settings.app.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=settings.database.echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=settings.database.echo,
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.pool_size,
        # No pre-ping: it costs a round trip per checkout. A connection broken by a database
        # restart fails one statement, and SQLAlchemy then replaces the whole pool.
        pool_recycle=1800,
    )


def insert_for(session: AsyncSession) -> Any:
    """The INSERT construct of the session's dialect (both have ON CONFLICT clauses)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets the page read while a write commits; foreign keys are off by default in SQLite;
    # the busy timeout turns a brief writer collision into a wait instead of an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
