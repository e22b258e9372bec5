"""The unit of work: commit, rollback, and side effects only after commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.auth.signin import sign_in
from backend.db import migrate
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.users import service
from tests.helpers import make_settings


class Boom(Exception):
    pass


async def test_commit_releases_events_rollback_drops_them(
    backend: dict[str, Any], tmp_path: Path, new_telegram_id
) -> None:
    settings = make_settings(tmp_path, **backend)
    await migrate.upgrade_async(settings)
    db = Database.connect(settings)
    released: list[str] = []

    async def note(label: str) -> None:
        released.append(label)

    try:
        kept, dropped = new_telegram_id(), new_telegram_id()
        async with unit_of_work(db) as uow:
            await sign_in(uow, service.TelegramProfile(telegram_id=kept))
            uow.after_commit(lambda: note("kept"))
            assert released == []  # nothing leaves before the commit
        assert released == ["kept"]

        async def failing_job() -> None:
            async with unit_of_work(db) as uow:
                await sign_in(uow, service.TelegramProfile(telegram_id=dropped))
                uow.after_commit(lambda: note("dropped"))
                raise Boom

        with pytest.raises(Boom):
            await failing_job()
        assert released == ["kept"]

        async with db.reads() as session:
            assert await service.get_by_telegram_id(session, kept) is not None
            assert await service.get_by_telegram_id(session, dropped) is None
    finally:
        await db.dispose()
