"""What the ledger service needs from a database, inside the caller's transaction."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.ledger.chain import ChainHead, Link
from backend.ledger.domain import AccountFlags, AccountSpec, Balance, Transfer, TransferKind

ACCOUNT_COLUMNS = (
    "id, key, asset, flags, debits_pending, debits_posted, credits_pending, credits_posted"
)
TRANSFER_COLUMNS = (
    "id, debit_account_id, credit_account_id, asset, amount, kind, pending_id, expires_at, "
    "code, metadata, timestamp"
)


@dataclass(frozen=True, slots=True)
class Delta:
    """How much one account's counters move in a batch: netted, one update per account."""

    account_id: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @classmethod
    def between(cls, before: Balance, after: Balance) -> Delta | None:
        delta = cls(
            before.id,
            after.debits_pending - before.debits_pending,
            after.debits_posted - before.debits_posted,
            after.credits_pending - before.credits_pending,
            after.credits_posted - before.credits_posted,
        )
        moved = delta.debits_pending or delta.debits_posted
        return delta if moved or delta.credits_pending or delta.credits_posted else None


def balance_from(row: Any) -> Balance:
    return Balance(
        id=row.id,
        key=row.key,
        asset=row.asset,
        flags=AccountFlags(row.flags),
        debits_pending=row.debits_pending,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        credits_posted=row.credits_posted,
    )


def transfer_from(row: Any) -> Transfer:
    return Transfer(
        id=row.id,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        asset=row.asset,
        amount=row.amount,
        kind=TransferKind(row.kind),
        pending_id=row.pending_id,
        expires_at=row.expires_at,
        code=row.code,
        metadata=row.metadata,
        timestamp=row.timestamp,
    )


def batch_state_from(
    rows: Iterable[Any], pending_ids: Collection[str]
) -> tuple[dict[str, Transfer], dict[str, TransferKind]]:
    """Stored transfers by id, and which of ``pending_ids`` were already posted or voided."""
    known: dict[str, Transfer] = {}
    resolved: dict[str, TransferKind] = {}
    for row in rows:
        transfer = transfer_from(row)
        known[transfer.id] = transfer
        if transfer.pending_id is not None and transfer.pending_id in pending_ids:
            resolved[transfer.pending_id] = transfer.kind
    return known, resolved


def transfer_rows(transfers: Sequence[Transfer], links: Sequence[Link]) -> list[dict[str, Any]]:
    """The bound parameters of each new transfer, with its place in the chain."""
    return [
        {
            "id": t.id,
            "debit": t.debit_account_id,
            "credit": t.credit_account_id,
            "asset": t.asset,
            "amount": t.amount,
            "kind": t.kind.value,
            "pending": t.pending_id,
            "expires": t.expires_at,
            "code": t.code,
            "metadata": t.metadata,
            "ts": t.timestamp,
            "chain": link.chain,
            "seq": link.seq,
            "prev": link.prev_hash,
            "hash": link.hash,
        }
        for t, link in zip(transfers, links, strict=True)
    ]


def delta_rows(deltas: Iterable[Delta]) -> list[dict[str, Any]]:
    return [
        {
            "id": d.account_id,
            "dp": d.debits_pending,
            "dpo": d.debits_posted,
            "cp": d.credits_pending,
            "cpo": d.credits_posted,
        }
        for d in deltas
    ]


def account_rows(keys: Iterable[str]) -> list[dict[str, Any]]:
    """New accounts' columns, from what their keys say (ValueError for a malformed key)."""
    rows = []
    for key in keys:
        spec = AccountSpec.parse(key)
        rows.append(
            {
                "key": spec.key,
                "owner_id": spec.owner_id,
                "asset": spec.asset,
                "code": spec.code,
                "flags": int(spec.flags),
            }
        )
    return rows


class LedgerStore(ABC):
    lock_chain_sql = "SELECT head_seq, head_hash FROM ledger_chains WHERE id = :chain"

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def begin(self) -> int:
        """Prepare for a batch; returns the chain to append to."""
        return 0

    @abstractmethod
    async def transfers(self, ids: Collection[str]) -> dict[str, Transfer]:
        """Stored transfers by id."""

    @abstractmethod
    async def lock_accounts(
        self, keys: Collection[str], ids: Collection[int]
    ) -> dict[str, Balance]:
        """Create the accounts ``keys`` name that do not exist yet, then lock every account
        named (by key or id) in id order, so that no two batches can deadlock on them."""

    @abstractmethod
    async def batch_state(
        self, ids: Collection[str], pending_ids: Collection[str]
    ) -> tuple[dict[str, Transfer], dict[str, TransferKind]]:
        """With the accounts locked: transfers already stored among ``ids`` and ``pending_ids``,
        and, for each pending transfer already posted or voided, which."""

    async def lock_chain(self, chain: int) -> ChainHead:
        """The chain's head, held until the transaction ends."""
        rows = await self.rows(self.lock_chain_sql, chain=chain)
        return ChainHead(chain, rows[0].head_seq, bytes(rows[0].head_hash))

    @abstractmethod
    async def append(
        self,
        transfers: Sequence[Transfer],
        links: Sequence[Link],
        deltas: Iterable[Delta],
        head: ChainHead,
    ) -> None:
        """Write the transfers, move the account counters, and move the chain head."""

    async def move_head(self, head: ChainHead) -> None:
        await self.connection.execute(
            text("UPDATE ledger_chains SET head_seq = :seq, head_hash = :hash WHERE id = :chain"),
            {"seq": head.seq, "hash": head.hash, "chain": head.chain},
        )

    async def rows(self, sql: str, **params: Any) -> Sequence[Any]:
        result = await self.connection.execute(text(sql), params)
        return result.all()
