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
    """A transactional session, an autocommit session for plain reads, and the callbacks that
    may only run once the transaction has committed.

    Neither session touches the database until first used, so a request that reads nothing
    costs nothing, and one that only reads through ``reads`` never opens a transaction.
    """

    def __init__(self, session: AsyncSession, reads: AsyncSession) -> None:
        self.session = session
        self.reads = reads
        self._after_commit: list[AfterCommit] = []

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
    async with db.sessions() as session, db.reads() as reads:
        uow = UnitOfWork(session, reads)
        try:
            yield uow
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    await uow._run_after_commit()
