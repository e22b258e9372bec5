"""The ledger service: submit batches of transfers inside a unit of work, read balances.

Every balance in the product moves through ``Ledger.submit``.  It locks the accounts a batch
touches (in id order), decides every request with the pure rules in ``apply``, appends the new
transfers to a hash chain, and moves the counters, all in the caller's transaction.  Listeners
hear about changed balances only after that transaction commits.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.db.engine import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.errors import RETRYABLE_SQLSTATES, BadRequest, Conflict
from backend.ledger.apply import BatchResult, apply_batch
from backend.ledger.chain import extend
from backend.ledger.domain import (
    Balance,
    Outcome,
    Transfer,
    TransferKind,
    TransferRequest,
    shard_key,
)
from backend.ledger.store import store_for
from backend.ledger.store.base import Delta

log = structlog.get_logger(__name__)

BalanceListener = Callable[[list[Balance]], Awaitable[None]]
# A batch that lost a race (errors.RETRYABLE_SQLSTATES, or a unique violation: two batches
# creating one transfer id) runs again; five straight losses mean something else is wrong.
_RETRYABLE = RETRYABLE_SQLSTATES | {"23505"}
_RETRIES = 5

_EXPIRED = """
SELECT t.id FROM ledger_transfers t
WHERE t.kind = 'pending' AND t.expires_at <= :now AND t.expires_at > :since
  AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)
ORDER BY t.expires_at LIMIT :limit
"""

_REFUSALS = {
    Outcome.EXCEEDS_CREDITS: "insufficient_funds",
}


class TransferRefused(Conflict):
    """A transfer the ledger would not record; ``code`` says why (TigerBeetle's result)."""

    def __init__(self, request: TransferRequest, outcome: Outcome) -> None:
        super().__init__(
            f"transfer {request.id}: {outcome.value.replace('_', ' ')}",
            code=_REFUSALS.get(outcome, outcome.value),
        )
        self.request = request
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class Submitted:
    outcomes: list[Outcome]
    transfers: list[Transfer | None]
    balances: dict[str, Balance]
    """Every account the batch touched, as it stands after the batch."""

    @property
    def created(self) -> int:
        return sum(outcome is Outcome.CREATED for outcome in self.outcomes)


def derived_id(prefix: str, cause: str) -> str:
    """A transfer id that follows from its cause, so a retried cause names the same transfer.
    Causes too long to fit are hashed (collision-free in practice)."""
    candidate = f"{prefix}:{cause}"
    if len(candidate) <= 64:
        return candidate
    return f"{prefix}:{hashlib.sha256(cause.encode()).hexdigest()[: 63 - len(prefix)]}"


def now_micros() -> int:
    return time.time_ns() // 1000


class Ledger:
    def __init__(self) -> None:
        self._listeners: list[BalanceListener] = []
        self._chains: WeakKeyDictionary[UnitOfWork, int] = WeakKeyDictionary()

    def listen(self, listener: BalanceListener) -> None:
        """Call ``listener`` with the accounts a committed batch changed."""
        self._listeners.append(listener)

    async def submit(
        self, uow: UnitOfWork, requests: Sequence[TransferRequest], *, strict: bool = True
    ) -> Submitted:
        """Record ``requests`` in the unit of work's transaction.

        ``strict``: any refused request raises ``TransferRefused`` (and the caller's transaction
        rolls back); otherwise each request's outcome is returned, as TigerBeetle does, and the
        requests that succeeded are recorded.
        """
        if not requests:
            return Submitted([], [], {})
        result, changed_keys = await self._apply(uow, requests, now_micros(), strict=strict)
        changed = [result.balances[key] for key in changed_keys]
        if changed and self._listeners:
            uow.after_commit(lambda: self._notify(changed))
        return Submitted(result.outcomes, result.transfers, result.balances)

    async def stored(self, uow: UnitOfWork, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are recorded transfers (committed, or in this transaction)."""
        store = store_for(await uow.session.connection())
        return set(await store.transfers(ids))

    async def submit_batch(self, db: Database, requests: Sequence[TransferRequest]) -> Submitted:
        """Record a batch in a transaction of its own, retried when it loses a race."""
        for attempt in range(_RETRIES):
            try:
                async with unit_of_work(db) as uow:
                    return await self.submit(uow, requests, strict=False)
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
                if code not in _RETRYABLE or attempt == _RETRIES - 1:
                    raise
                log.info("ledger_batch_retry", sqlstate=code, attempt=attempt + 1)
        raise AssertionError("unreachable")

    async def expire(
        self, db: Database, *, now: int | None = None, since: int = 0, limit: int = 1000
    ) -> int:
        """Void pending transfers whose time ran out (after ``since``, in microseconds);
        returns how many were voided.

        Safe to run from every process at once: the void's id is derived from the pending
        transfer's, so a second sweeper's void is an idempotent repeat.
        """
        now = now_micros() if now is None else now
        params = {"now": now, "since": since, "limit": limit}
        async with db.reads() as session:
            result = await session.connection()
            rows = (await result.execute(text(_EXPIRED), params)).all()
        if not rows:
            return 0
        requests = [
            TransferRequest(
                id=derived_id("expire", row.id),
                code="expired",
                kind=TransferKind.VOID,
                pending_id=row.id,
            )
            for row in rows
        ]
        submitted = await self.submit_batch(db, requests)
        return submitted.created

    async def _apply(
        self, uow: UnitOfWork, requests: Sequence[TransferRequest], now: int, *, strict: bool
    ) -> tuple[BatchResult, list[str]]:
        store = store_for(await uow.session.connection())
        # A transaction that submits again appends to the chain it already holds: taking a
        # second head could wait on a writer that waits for the first.
        chain = self._chains.setdefault(uow, await store.begin())
        pending_ids = {r.pending_id for r in requests if r.pending_id is not None}
        # Pending transfers are immutable: reading them before the locks is safe, and tells
        # which accounts their post or void must lock.
        pendings = await store.transfers(pending_ids)
        keys = set()
        for request in requests:
            if request.debit is not None:
                keys.add(shard_key(request.debit, request.pending_id or request.id))
            if request.credit is not None:
                keys.add(shard_key(request.credit, request.pending_id or request.id))
        account_ids = {t.debit_account_id for t in pendings.values()}
        account_ids |= {t.credit_account_id for t in pendings.values()}
        try:
            accounts = await store.lock_accounts(keys, account_ids)
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_account") from exc
        known, resolved = await store.batch_state({r.id for r in requests}, pending_ids)
        batch = apply_batch(requests, accounts, pendings | known, resolved, now)
        if strict:
            for request, outcome in zip(requests, batch.outcomes, strict=True):
                if not outcome.ok:
                    raise TransferRefused(request, outcome)
        deltas = {
            key: delta
            for key, after in batch.balances.items()
            if (delta := Delta.between(accounts[key], after)) is not None
        }
        if batch.created:
            head = await store.lock_chain(chain)
            links = extend(head, batch.created)
            await store.append(batch.created, links, deltas.values(), head)
        return batch, list(deltas)

    async def _notify(self, changed: list[Balance]) -> None:
        for listener in self._listeners:
            try:
                await listener(changed)
            except Exception:
                log.exception("ledger_listener_failed", listener=repr(listener))
