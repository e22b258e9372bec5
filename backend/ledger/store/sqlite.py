"""SQLite (the embedded default): one writer at a time, so no row locks to order."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, text

from backend.ledger.chain import ChainHead, Link
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

_CHAIN = 0  # one writer at a time: one chain is enough


class SqliteStore(LedgerStore):
    async def begin(self) -> int:
        # A write first: it takes SQLite's write lock (waiting out another writer), so what the
        # batch then reads cannot change before it commits.
        await self.connection.execute(
            text("UPDATE ledger_chains SET head_seq = head_seq WHERE id = :chain"),
            {"chain": _CHAIN},
        )
        return _CHAIN

    async def transfers(self, ids: Collection[str]) -> dict[str, Transfer]:
        if not ids:
            return {}
        rows = await self._select(
            f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id IN :ids", ids=list(ids)
        )
        return {row.id: transfer_from(row) for row in rows}

    async def lock_accounts(
        self, keys: Collection[str], ids: Collection[int]
    ) -> dict[str, Balance]:
        found = await self._accounts(keys, ids)
        missing = account_rows(key for key in keys if key not in found)
        if missing:
            await self.connection.execute(
                text(
                    "INSERT INTO ledger_accounts (key, owner_id, asset, code, flags, "
                    "debits_pending, debits_posted, credits_pending, credits_posted, created_at) "
                    "VALUES (:key, :owner_id, :asset, :code, :flags, 0, 0, 0, 0, "
                    "CURRENT_TIMESTAMP) "
                    "ON CONFLICT (key) DO NOTHING"
                ),
                missing,
            )
            found |= await self._accounts([row["key"] for row in missing], [])
        return found

    async def _accounts(self, keys: Collection[str], ids: Collection[int]) -> dict[str, Balance]:
        rows = await self._select(
            f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE key IN :keys OR id IN :ids",
            keys=list(keys) or [""],
            ids=list(ids) or [0],
        )
        return {row.key: balance_from(row) for row in rows}

    async def batch_state(
        self, ids: Collection[str], pending_ids: Collection[str]
    ) -> tuple[dict[str, Transfer], dict[str, TransferKind]]:
        rows = await self._select(
            f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers "
            "WHERE id IN :ids OR pending_id IN :pending",
            ids=list(ids) or [""],
            pending=list(pending_ids) or [""],
        )
        return batch_state_from(rows, pending_ids)

    async def append(
        self,
        transfers: Sequence[Transfer],
        links: Sequence[Link],
        deltas: Iterable[Delta],
        head: ChainHead,
    ) -> None:
        await self.connection.execute(
            text(
                "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, asset, "
                "amount, kind, pending_id, expires_at, code, metadata, timestamp, chain, "
                "chain_seq, prev_hash, hash) VALUES (:id, :debit, :credit, :asset, :amount, "
                ":kind, :pending, :expires, :code, :metadata, :ts, :chain, :seq, :prev, :hash)"
            ),
            transfer_rows(transfers, links),
        )
        moves = delta_rows(deltas)
        if moves:
            await self.connection.execute(
                text(
                    "UPDATE ledger_accounts SET debits_pending = debits_pending + :dp, "
                    "debits_posted = debits_posted + :dpo, "
                    "credits_pending = credits_pending + :cp, "
                    "credits_posted = credits_posted + :cpo WHERE id = :id"
                ),
                moves,
            )
        await self.move_head(head)

    async def _select(self, sql: str, **lists: list[Any]) -> Sequence[Any]:
        statement = text(sql).bindparams(*(bindparam(name, expanding=True) for name in lists))
        result = await self.connection.execute(statement, lists)
        return result.all()
