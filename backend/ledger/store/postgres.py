"""PostgreSQL: whole batches in a handful of statements, each column passed as one array."""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, text

from backend.ledger.chain import CHAINS, ChainHead, Link
from backend.ledger.domain import Balance, Transfer, TransferKind
from backend.ledger.store.base import (
    ACCOUNT_COLUMNS,
    TRANSFER_COLUMNS,
    Delta,
    LedgerStore,
    account_rows,
    balance_from,
    batch_state_from,
    delta_rows,
    transfer_from,
    transfer_rows,
)

# Account keys this process has seen in the database, so a batch of known accounts costs one
# statement.  Bounded: past the limit it starts over (a miss costs one no-op insert).
_KNOWN_KEYS_LIMIT = 200_000
_known_keys: WeakKeyDictionary[Engine, set[str]] = WeakKeyDictionary()

_CREATE_ACCOUNTS = """
INSERT INTO ledger_accounts
    (key, owner_id, asset, code, flags, debits_pending, debits_posted, credits_pending,
     credits_posted, created_at)
SELECT key, owner_id, asset, code, flags, 0, 0, 0, 0, now()
FROM unnest(CAST(:key AS text[]), CAST(:owner_id AS integer[]), CAST(:asset AS text[]),
            CAST(:code AS text[]), CAST(:flags AS smallint[]))
     AS new(key, owner_id, asset, code, flags)
ORDER BY key
ON CONFLICT (key) DO NOTHING
"""
# ORDER BY below the row locks: rows are locked in id order, the same in every transaction.
# The accounts are picked in a subquery and joined by id: with the plain `WHERE key = ANY(...)`
# form, batches that waited on each other's locks ran far slower (8k against 11k+ transfers/s
# in bench/ledger_bench.py; likely PostgreSQL re-checking the long ANY list on each row it
# had to wait for).
_LOCK_ACCOUNTS = f"""
SELECT {", ".join("a." + column for column in ACCOUNT_COLUMNS.split(", "))}
FROM ledger_accounts a
JOIN (SELECT id FROM ledger_accounts WHERE key = ANY(CAST(:keys AS text[]))
      UNION SELECT unnest(CAST(:ids AS bigint[]))) wanted ON wanted.id = a.id
ORDER BY a.id FOR UPDATE OF a
"""
_BATCH_STATE = f"""
SELECT {TRANSFER_COLUMNS} FROM ledger_transfers
WHERE id = ANY(CAST(:ids AS text[])) OR pending_id = ANY(CAST(:pending AS text[]))
"""
_INSERT_TRANSFERS = """
INSERT INTO ledger_transfers
    (id, debit_account_id, credit_account_id, asset, amount, kind, pending_id, expires_at,
     code, metadata, timestamp, chain, chain_seq, prev_hash, hash)
SELECT * FROM unnest(
    CAST(:id AS text[]), CAST(:debit AS bigint[]), CAST(:credit AS bigint[]),
    CAST(:asset AS text[]), CAST(:amount AS bigint[]), CAST(:kind AS text[]),
    CAST(:pending AS text[]), CAST(:expires AS bigint[]), CAST(:code AS text[]),
    CAST(:metadata AS text[]), CAST(:ts AS bigint[]), CAST(:chain AS smallint[]),
    CAST(:seq AS bigint[]), CAST(:prev AS bytea[]), CAST(:hash AS bytea[]))
"""
_MOVE_COUNTERS = """
UPDATE ledger_accounts AS account SET
    debits_pending = account.debits_pending + delta.dp,
    debits_posted = account.debits_posted + delta.dpo,
    credits_pending = account.credits_pending + delta.cp,
    credits_posted = account.credits_posted + delta.cpo
FROM unnest(CAST(:id AS bigint[]), CAST(:dp AS bigint[]), CAST(:dpo AS bigint[]),
            CAST(:cp AS bigint[]), CAST(:cpo AS bigint[])) AS delta(id, dp, dpo, cp, cpo)
WHERE account.id = delta.id
"""


class PostgresStore(LedgerStore):
    lock_chain_sql = LedgerStore.lock_chain_sql + " FOR UPDATE"

    async def begin(self) -> int:
        # Any chain will do; a random one keeps concurrent writers apart.
        return random.randrange(CHAINS)  # noqa: S311 - spreading load, not a secret

    async def transfers(self, ids: Collection[str]) -> dict[str, Transfer]:
        if not ids:
            return {}
        rows = await self.rows(
            f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = ANY(CAST(:ids AS text[]))",
            ids=list(ids),
        )
        return {row.id: transfer_from(row) for row in rows}

    async def lock_accounts(
        self, keys: Collection[str], ids: Collection[int]
    ) -> dict[str, Balance]:
        # Accounts are created before any is locked: inserting while holding locks could make
        # two batches wait on each other.  Keys known to exist skip the insert.
        known = _known_keys.setdefault(self.connection.engine.sync_engine, set())
        await self._create([key for key in keys if key not in known])
        rows = await self.rows(_LOCK_ACCOUNTS, keys=list(keys), ids=list(ids))
        found = {row.key: balance_from(row) for row in rows}
        missing = [key for key in keys if key not in found]
        if missing:
            # Only when the cache named an account whose creating transaction rolled back.  The
            # whole set is locked again, in id order (rows already held are simply re-read).
            await self._create(missing)
            rows = await self.rows(_LOCK_ACCOUNTS, keys=list(keys), ids=list(ids))
            found = {row.key: balance_from(row) for row in rows}
        if len(known) > _KNOWN_KEYS_LIMIT:
            known.clear()
        known.update(found)
        return found

    async def _create(self, keys: list[str]) -> None:
        if keys:
            await self.connection.execute(text(_CREATE_ACCOUNTS), as_arrays(account_rows(keys)))

    async def batch_state(
        self, ids: Collection[str], pending_ids: Collection[str]
    ) -> tuple[dict[str, Transfer], dict[str, TransferKind]]:
        rows = await self.rows(_BATCH_STATE, ids=list(ids), pending=list(pending_ids))
        return batch_state_from(rows, pending_ids)

    async def append(
        self,
        transfers: Sequence[Transfer],
        links: Sequence[Link],
        deltas: Iterable[Delta],
        head: ChainHead,
    ) -> None:
        await self.connection.execute(
            text(_INSERT_TRANSFERS), as_arrays(transfer_rows(transfers, links))
        )
        moves = delta_rows(deltas)
        if moves:  # transfers can net out (a pending posted in the same batch, say)
            await self.connection.execute(text(_MOVE_COUNTERS), as_arrays(moves))
        await self.move_head(head)


def as_arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows (at least one) as one array per column: each array is one ``unnest`` parameter."""
    return {name: [row[name] for row in rows] for name in rows[0]}
