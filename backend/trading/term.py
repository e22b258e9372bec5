"""Fencing the order books' writers with a term.

The process that runs the books is elected with a Redis lease, and a process that stalls past
its lease may not know it lost it.  So each process that starts running the books bumps the
term in the database, and every batch takes a shared lock on the term row and checks it is
still its own before writing.  The bump waits for batches in flight (their shared locks), and
batches after it see the new term and write nothing: two leaders never both write.
"""

from __future__ import annotations

from sqlalchemy import text

from backend.db.engine import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.trading.commands import WriterUnavailable

_BUMP = text("UPDATE trading_terms SET term = term + 1 WHERE id = 1 RETURNING term")
_CHECK = text("SELECT term FROM trading_terms WHERE id = 1 FOR SHARE")


class TermLost(WriterUnavailable):
    """Another process runs the books now; this one's batch wrote nothing."""


async def begin_term(db: Database) -> int:
    async with unit_of_work(db) as uow:
        connection = await uow.session.connection()
        return int((await connection.execute(_BUMP)).scalar_one())


async def check_term(uow: UnitOfWork, mine: int) -> None:
    connection = await uow.session.connection()
    # SQLite serves one process, which has a single writer already (and has no FOR SHARE).
    if connection.dialect.name != "postgresql":
        return
    current = int((await connection.execute(_CHECK)).scalar_one())
    if current != mine:
        raise TermLost(f"the order books moved to another process (term {current}, not {mine})")
