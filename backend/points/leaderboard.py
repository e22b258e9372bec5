"""The points leaderboard: a Redis sorted set kept current after each commit, or, in the
embedded default, a query over the ledger.

Scores are PTS balances.  Updates carry a version that only grows (the account's posted debits
plus posted credits), so two commits whose callbacks run out of order cannot leave the older
score in place, and a rebuild cannot overwrite a newer update.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import text

from backend.db.engine import Database
from backend.ledger.assets import POINTS
from backend.ledger.domain import AccountSpec, Balance

log = structlog.get_logger(__name__)

# Entries per Redis call when many balances change or the board is rebuilt.
_CHUNK = 1000

_UPDATE = """
local scores, versions = KEYS[1], KEYS[2]
for i = 1, #ARGV, 3 do
    local member, score, version = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local known = tonumber(redis.call('HGET', versions, member) or '-1')
    if version > known then
        redis.call('ZADD', scores, score, member)
        redis.call('HSET', versions, member, version)
    end
end
return 0
"""
_LEDGER_SCORES = """
SELECT owner_id, credits_posted - debits_posted AS points, credits_posted + debits_posted AS version
FROM ledger_accounts WHERE code = 'user' AND asset = :asset
"""


@dataclass(frozen=True, slots=True)
class Entry:
    user_id: int
    points: int
    version: int


@dataclass(frozen=True, slots=True)
class Standing:
    user_id: int
    points: int
    rank: int | None
    """1 for the most points; equal points share a rank.  None: no points yet."""


def entries_from(balances: Sequence[Balance]) -> list[Entry]:
    """Leaderboard entries for the users' point accounts among ``balances``."""
    entries = []
    for balance in balances:
        if balance.asset != POINTS.code or not balance.key.startswith("user:"):
            continue
        owner = AccountSpec.parse(balance.key).owner_id
        assert owner is not None
        version = balance.credits_posted + balance.debits_posted
        entries.append(Entry(owner, balance.balance, version))
    return entries


class Leaderboard(ABC):
    @abstractmethod
    async def update(self, entries: Sequence[Entry]) -> None: ...

    @abstractmethod
    async def top(self, limit: int) -> list[Standing]: ...

    @abstractmethod
    async def standing(self, user_id: int) -> Standing: ...

    async def rebuild(self, db: Database) -> int:
        """Bring the board in line with the ledger; returns the number of entries."""
        return 0

    async def restore(self, db: Database) -> None:
        """At start: a board that lost its data gets it back from the ledger (the rebuild is
        version-checked, so processes starting together do no harm)."""
        return None  # the ledger's own board cannot lose anything

    async def on_balances(self, balances: list[Balance]) -> None:
        """Ledger listener: runs after each commit that moved balances."""
        entries = entries_from(balances)
        if entries:
            await self.update(entries)


class RedisLeaderboard(Leaderboard):
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.scores = f"{prefix}:leaderboard:points"
        self.versions = f"{prefix}:leaderboard:versions"
        self._update = redis.register_script(_UPDATE)

    async def update(self, entries: Sequence[Entry]) -> None:
        for start in range(0, len(entries), _CHUNK):
            args: list[int] = []
            for entry in entries[start : start + _CHUNK]:
                args += (entry.user_id, entry.points, entry.version)
            await self._update(keys=[self.scores, self.versions], args=args)

    async def top(self, limit: int) -> list[Standing]:
        rows = await self.redis.zrevrange(self.scores, 0, limit - 1, withscores=True)
        standings: list[Standing] = []
        for member, score in rows:
            points = int(score)
            if points <= 0:
                break
            rank = standings[-1].rank if standings and standings[-1].points == points else None
            if rank is None:
                rank = await self.redis.zcount(self.scores, f"({points}", "+inf") + 1
            standings.append(Standing(int(member), points, rank))
        return standings

    async def standing(self, user_id: int) -> Standing:
        score = await self.redis.zscore(self.scores, user_id)
        if score is None or int(score) <= 0:
            return Standing(user_id, int(score or 0), None)
        above = await self.redis.zcount(self.scores, f"({int(score)}", "+inf")
        return Standing(user_id, int(score), above + 1)

    async def rebuild(self, db: Database) -> int:
        async with db.reads() as session:
            connection = await session.connection()
            rows = (await connection.execute(text(_LEDGER_SCORES), {"asset": POINTS.code})).all()
        entries = [Entry(row.owner_id, row.points, row.version) for row in rows]
        # Version-checked like any update: a commit racing the rebuild keeps its newer score.
        # Nothing is removed: ledger accounts are never deleted, so a member the snapshot
        # lacks is a user whose first points arrived after it was read.
        await self.update(entries)
        return len(entries)

    async def missing(self) -> bool:
        """Whether the board is gone (Redis restarted without its data)."""
        return not await self.redis.exists(self.versions)

    async def restore(self, db: Database) -> None:
        try:
            if await self.missing():
                log.info("leaderboard_rebuilt", entries=await self.rebuild(db))
        except Exception:
            log.exception("leaderboard_rebuild_failed")


class LedgerLeaderboard(Leaderboard):
    """Without Redis: the ledger itself is the board (fine for the embedded default's users)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def update(self, entries: Sequence[Entry]) -> None:
        """Nothing to do: the query reads the ledger."""

    async def top(self, limit: int) -> list[Standing]:
        rows = await self._rows(
            "SELECT owner_id, credits_posted - debits_posted AS points, "
            "(SELECT COUNT(*) FROM ledger_accounts o WHERE o.code = 'user' AND o.asset = :asset "
            " AND o.credits_posted - o.debits_posted > a.credits_posted - a.debits_posted) "
            " AS above "
            "FROM ledger_accounts a WHERE code = 'user' AND asset = :asset "
            "AND credits_posted - debits_posted > 0 "
            "ORDER BY points DESC, owner_id LIMIT :limit",
            limit=limit,
        )
        return [Standing(row.owner_id, row.points, row.above + 1) for row in rows]

    async def standing(self, user_id: int) -> Standing:
        rows = await self._rows(
            "SELECT credits_posted - debits_posted AS points FROM ledger_accounts "
            "WHERE code = 'user' AND asset = :asset AND owner_id = :user_id",
            user_id=user_id,
        )
        points = rows[0].points if rows else 0
        if points <= 0:
            return Standing(user_id, points, None)
        above = await self._rows(
            "SELECT COUNT(*) AS above FROM ledger_accounts WHERE code = 'user' "
            "AND asset = :asset AND credits_posted - debits_posted > :points",
            points=points,
        )
        return Standing(user_id, points, above[0].above + 1)

    async def _rows(self, sql: str, **params: object) -> list[Any]:
        async with self.db.reads() as session:
            connection = await session.connection()
            result = await connection.execute(text(sql), {"asset": POINTS.code, **params})
            return list(result.all())


def leaderboard_for(db: Database, redis: Redis | None, prefix: str) -> Leaderboard:
    """Redis when the process has it (a sorted set every process shares), else the ledger."""
    return RedisLeaderboard(redis, prefix) if redis is not None else LedgerLeaderboard(db)
