"""Unit of work: one transaction per request or job, events released only after commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db.engine import Database

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork:
    """A transactional session, short autocommit reads, and the callbacks that may only run
    once the transaction has committed.

    The session touches the database only when first used, so a request that only reads
    through ``read()`` never opens a transaction.
    """

    def __init__(self, session: AsyncSession, db: Database) -> None:
        self.session = session
        self._db = db
        self._after_commit: list[AfterCommit] = []

    def read(self) -> AsyncSession:
        """A session for one autocommit read: ``async with uow.read() as session: ...``.

        Its connection goes back to the pool when the block ends, before the transaction
        takes its own: a request holding one connection while waiting for a second would
        deadlock the pool under load.
        """
        return self._db.reads()

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once the transaction commits; dropped if it rolls back."""
        self._after_commit.append(callback)

    async def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                # The data is committed; a failed side effect must not turn into a failed request.
                log.exception("after_commit_failed", callback=repr(callback))


@asynccontextmanager
async def unit_of_work(db: Database) -> AsyncIterator[UnitOfWork]:
    """Commit when the block ends normally, roll back when it raises."""
    async with db.sessions() as session:
        uow = UnitOfWork(session, db)
        try:
            yield uow
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    await uow._run_after_commit()
