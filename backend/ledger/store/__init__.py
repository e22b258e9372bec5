"""Where ledger batches are read and written: one implementation per database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.ledger.store.base import LedgerStore
from backend.ledger.store.postgres import PostgresStore
from backend.ledger.store.sqlite import SqliteStore


def store_for(connection: AsyncConnection) -> LedgerStore:
    if connection.dialect.name == "postgresql":
        return PostgresStore(connection)
    return SqliteStore(connection)


__all__ = ["LedgerStore", "store_for"]
