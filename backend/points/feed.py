"""Live leaderboard: the top of the board on the `leaderboard` topic, when it changed."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlmodel import col, select

from backend.db.engine import Database
from backend.hub.hub import Hub
from backend.ledger.domain import Balance
from backend.points.leaderboard import Leaderboard, Standing, entries_from
from backend.users.models import User

log = structlog.get_logger(__name__)

# A busy minute changes the board thousands of times; nobody reads it faster than once a second.
PUBLISH_INTERVAL = 1.0
# The tab shows ten; twenty leaves room for a client that wants a longer list, and keeps each
# frame under a kilobyte or two.
BOARD_SIZE = 20


async def named(db: Database, standings: list[Standing]) -> list[dict[str, Any]]:
    """Standings with each user's first name (the only personal detail the board shows)."""
    ids = [standing.user_id for standing in standings]
    names: dict[int, str] = {}
    if ids:
        async with db.reads() as session:
            rows = await session.exec(select(User.id, User.first_name).where(col(User.id).in_(ids)))
            names = {int(user_id or 0): name for user_id, name in rows}
    return [
        {
            "rank": standing.rank,
            "user_id": standing.user_id,
            "name": names.get(standing.user_id, ""),
            "points": standing.points,
        }
        for standing in standings
    ]


class LeaderboardFeed:
    def __init__(self, board: Leaderboard, db: Database, hub: Hub) -> None:
        self.board = board
        self.db = db
        self.hub = hub
        self._changed = asyncio.Event()

    async def on_balances(self, balances: list[Balance]) -> None:
        """Ledger listener: a point balance moved, so the board may have."""
        if entries_from(balances):
            self._changed.set()

    async def snapshot(self) -> dict[str, Any]:
        return {"top": await named(self.db, await self.board.top(BOARD_SIZE))}

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                state = await self.snapshot()
                await self.hub.publish("leaderboard", "snapshot", state, state=state)
            except Exception:
                log.exception("leaderboard_publish_failed")
            await asyncio.sleep(PUBLISH_INTERVAL)
