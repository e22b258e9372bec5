"""Applying a batch of transfer requests to locked balances: pure, and the whole of the rules.

The store locks every account the batch touches and loads the transfers it refers to; this
function then decides each request's outcome and the counters that result.  Being pure, it is
what the property tests drive with random sequences.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from backend.ledger.domain import (
    Balance,
    Outcome,
    Transfer,
    TransferKind,
    TransferRequest,
    shard_key,
)

MICROS = 1_000_000
_V = TypeVar("_V")


@dataclass(slots=True)
class BatchResult:
    outcomes: list[Outcome]
    transfers: list[Transfer | None]
    """Per request: the transfer created or found (idempotent retry), None when it failed."""
    created: list[Transfer] = field(default_factory=list)
    balances: dict[str, Balance] = field(default_factory=dict)
    """The accounts as they stand after the batch, by key."""


class _Failed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def apply_batch(
    requests: Sequence[TransferRequest],
    accounts: Mapping[str, Balance],
    known: Mapping[str, Transfer],
    resolved: Mapping[str, TransferKind],
    now: int,
) -> BatchResult:
    """Decide each request in order.

    ``accounts``: every account the batch names (sharded keys), as locked.  ``known``: stored
    transfers among the requested ids and the pending transfers referred to.  ``resolved``: for
    pending transfers already posted or voided, which.  ``now``: microseconds since the epoch.
    """
    state = _State(
        balances={key: balance.copy() for key, balance in accounts.items()},
        keys={balance.id: key for key, balance in accounts.items()},
        known=dict(known),
        resolved=dict(resolved),
    )
    result = BatchResult(outcomes=[], transfers=[])
    for chain in _chains(requests):
        trial = state.fork()
        outcomes: list[Outcome] = []
        transfers: list[Transfer | None] = []
        for index, request in chain:
            try:
                transfer, outcome = trial.apply(request, now + index)
            except _Failed as failure:
                outcomes.append(failure.outcome)
                break
            outcomes.append(outcome)
            transfers.append(transfer)
        if len(outcomes) == len(chain) and all(outcome.ok for outcome in outcomes):
            state.adopt(trial)
            result.outcomes += outcomes
            result.transfers += transfers
            result.created += [
                transfer
                for transfer, outcome in zip(transfers, outcomes, strict=True)
                if outcome is Outcome.CREATED and transfer is not None
            ]
            continue
        failed = outcomes[-1]
        for position in range(len(chain)):
            is_cause = position == len(outcomes) - 1
            result.outcomes.append(failed if is_cause else Outcome.LINKED_EVENT_FAILED)
            result.transfers.append(None)
    result.balances = state.balances
    return result


def _chains(requests: Sequence[TransferRequest]) -> list[list[tuple[int, TransferRequest]]]:
    """Split a batch into linked chains; a chain left open at the end of the batch is closed."""
    chains: list[list[tuple[int, TransferRequest]]] = []
    current: list[tuple[int, TransferRequest]] = []
    for index, request in enumerate(requests):
        current.append((index, request))
        if not request.linked:
            chains.append(current)
            current = []
    if current:
        chains.append(current)
    return chains


class _Trial:
    """A chain's view of the balances: an account is copied when first touched, and the copies
    replace the originals only if the whole chain succeeds."""

    __slots__ = ("base", "touched")

    def __init__(self, base: dict[str, Balance]) -> None:
        self.base = base
        self.touched: dict[str, Balance] = {}

    def __getitem__(self, key: str) -> Balance:
        balance = self.touched.get(key)
        if balance is None:
            balance = self.touched[key] = self.base[key].copy()
        return balance


@dataclass(slots=True)
class _State:
    balances: dict[str, Balance]
    keys: dict[int, str]
    known: MutableMapping[str, Transfer]
    resolved: MutableMapping[str, TransferKind]
    trial: _Trial | None = None

    def fork(self) -> _State:
        """A trial state for one chain: ``adopt`` it when the chain succeeds, drop it if not."""
        # Transfers and resolutions are only added to, and a chain is short: plain copies of
        # those would cost a whole batch's worth per chain, so the trial records its own.
        return _State(
            balances=self.balances,
            keys=self.keys,
            known=_Overlay(self.known),
            resolved=_Overlay(self.resolved),
            trial=_Trial(self.balances),
        )

    def adopt(self, trial: _State) -> None:
        assert trial.trial is not None
        self.balances.update(trial.trial.touched)
        assert isinstance(trial.known, _Overlay) and isinstance(trial.resolved, _Overlay)
        self.known.update(trial.known.added)
        self.resolved.update(trial.resolved.added)

    def apply(self, request: TransferRequest, timestamp: int) -> tuple[Transfer, Outcome]:
        existing = self.known.get(request.id)
        try:
            transfer = self._build(request, timestamp, retry=existing is not None)
        except _Failed:
            if existing is not None:
                raise _Failed(Outcome.EXISTS_WITH_DIFFERENT_FIELDS) from None
            raise
        if existing is not None:
            if existing.same_request(transfer):
                return existing, Outcome.EXISTS
            raise _Failed(Outcome.EXISTS_WITH_DIFFERENT_FIELDS)
        self._move(transfer)
        self.known[transfer.id] = transfer
        if transfer.pending_id is not None:
            self.resolved[transfer.pending_id] = transfer.kind
        return transfer, Outcome.CREATED

    def _build(self, request: TransferRequest, timestamp: int, *, retry: bool) -> Transfer:
        metadata = request.encoded_metadata
        if request.pending_id is None:
            assert request.debit and request.credit and request.asset
            if request.debit == request.credit:
                raise _Failed(Outcome.ACCOUNTS_MUST_BE_DIFFERENT)
            debit = self._by_key(shard_key(request.debit, request.id))
            credit = self._by_key(shard_key(request.credit, request.id))
            if not debit.asset == credit.asset == request.asset:
                raise _Failed(Outcome.ASSET_MISMATCH)
            expires = timestamp + request.timeout * MICROS if request.timeout else None
            return Transfer(
                request.id,
                debit.id,
                credit.id,
                request.asset,
                request.amount,
                request.kind,
                None,
                expires,
                request.code,
                metadata,
                timestamp,
            )
        pending = self._pending(request, timestamp, retry=retry)
        amount = request.amount or pending.amount
        if request.kind is TransferKind.POST and amount > pending.amount:
            raise _Failed(Outcome.EXCEEDS_PENDING_AMOUNT)
        if request.kind is TransferKind.VOID and amount != pending.amount:
            raise _Failed(Outcome.PENDING_FIELDS_DIFFER)
        return Transfer(
            request.id,
            pending.debit_account_id,
            pending.credit_account_id,
            pending.asset,
            amount,
            request.kind,
            pending.id,
            None,
            request.code,
            metadata,
            timestamp,
        )

    def _pending(self, request: TransferRequest, timestamp: int, *, retry: bool) -> Transfer:
        assert request.pending_id is not None
        pending = self.known.get(request.pending_id)
        if pending is None:
            raise _Failed(Outcome.PENDING_NOT_FOUND)
        if pending.kind is not TransferKind.PENDING:
            raise _Failed(Outcome.PENDING_NOT_PENDING)
        by_id = self.keys
        for named, account_id in (
            (request.debit, pending.debit_account_id),
            (request.credit, pending.credit_account_id),
        ):
            if named is not None and shard_key(named, pending.id) != by_id.get(account_id):
                raise _Failed(Outcome.PENDING_FIELDS_DIFFER)
        if request.asset is not None and request.asset != pending.asset:
            raise _Failed(Outcome.PENDING_FIELDS_DIFFER)
        if retry:
            # A retried post or void finds the pending transfer resolved, by itself: only its
            # fields are compared with what was recorded, not the pending transfer's state.
            return pending
        already = self.resolved.get(pending.id)
        if already is TransferKind.POST:
            raise _Failed(Outcome.PENDING_ALREADY_POSTED)
        if already is TransferKind.VOID:
            raise _Failed(Outcome.PENDING_ALREADY_VOIDED)
        # An expired reservation may still be voided (that is how expiry is recorded).
        expired = pending.expires_at is not None and timestamp >= pending.expires_at
        if expired and request.kind is TransferKind.POST:
            raise _Failed(Outcome.PENDING_EXPIRED)
        return pending

    def _move(self, transfer: Transfer) -> None:
        debit, credit = (
            self._account(transfer.debit_account_id),
            self._account(transfer.credit_account_id),
        )
        amount = transfer.amount
        if transfer.kind is TransferKind.POSTED:
            debit.debits_posted += amount
            credit.credits_posted += amount
        elif transfer.kind is TransferKind.PENDING:
            debit.debits_pending += amount
            credit.credits_pending += amount
        else:
            reserved = self.known[transfer.pending_id].amount  # type: ignore[index]
            debit.debits_pending -= reserved
            credit.credits_pending -= reserved
            if transfer.kind is TransferKind.POST:
                debit.debits_posted += amount
                credit.credits_posted += amount
        for account in (debit, credit):
            violation = account.violation()
            if violation is not None:
                raise _Failed(violation)

    def _by_key(self, key: str) -> Balance:
        return self.trial[key] if self.trial is not None else self.balances[key]

    def _account(self, account_id: int) -> Balance:
        key = self.keys[account_id]
        return self.trial[key] if self.trial is not None else self.balances[key]


class _Overlay(MutableMapping[str, _V]):
    """Reads through to a base mapping and keeps what is added on top; the base is untouched."""

    def __init__(self, base: MutableMapping[str, _V]) -> None:
        self.base = base
        self.added: dict[str, _V] = {}

    def __getitem__(self, key: str) -> _V:
        if key in self.added:
            return self.added[key]
        return self.base[key]

    def __setitem__(self, key: str, value: _V) -> None:
        self.added[key] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("transfers are never removed")

    def __iter__(self) -> Iterator[str]:
        yield from self.added
        yield from (key for key in self.base if key not in self.added)

    def __len__(self) -> int:
        return len(self.base) + sum(1 for key in self.added if key not in self.base)
