"""The ledger's vocabulary, pure: account keys, transfer requests, stored transfers, outcomes.

The model is TigerBeetle's: transfers are immutable; every transfer debits one account and
credits another by the same amount in the same asset; a transfer id is the client's idempotency
key; pending transfers reserve funds until a later transfer posts or voids them.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum

from backend.ledger.assets import ASSETS, MAX_UNITS

# A hot system account row is locked from a transfer's update to its commit.  Spreading each
# system account over this many rows lets as many writers through at once; the pool's balance is
# the sum of its shards.
SYSTEM_SHARDS = 8
# Encoded metadata stays small: it is copied into every hash and every history page.
MAX_METADATA_BYTES = 1024
# One year: longer reservations are a bug in the caller, not a business need.
MAX_TIMEOUT_SECONDS = 366 * 24 * 3600

_TRANSFER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._\-]{0,63}")
_CODE = re.compile(r"[a-z][a-z0-9_.]{0,31}")
_SYSTEM_NAME = re.compile(r"[a-z][a-z0-9_]{0,23}")


class AccountFlags(IntFlag):
    NONE = 0
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    """A balance that may not go below zero: every user account."""
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2


class TransferKind(StrEnum):
    POSTED = "posted"
    PENDING = "pending"
    POST = "post"
    """Posts a pending transfer, fully or partly; what is not posted is released."""
    VOID = "void"
    """Releases a pending transfer."""


class Outcome(StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    """The same transfer was already recorded: an idempotent retry, not an error."""
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    LINKED_EVENT_FAILED = "linked_event_failed"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    ASSET_MISMATCH = "asset_mismatch"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    OVERFLOW = "overflow"
    PENDING_NOT_FOUND = "pending_transfer_not_found"
    PENDING_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_EXPIRED = "pending_transfer_expired"
    PENDING_FIELDS_DIFFER = "pending_transfer_fields_differ"
    EXCEEDS_PENDING_AMOUNT = "exceeds_pending_transfer_amount"

    @property
    def ok(self) -> bool:
        return self in (Outcome.CREATED, Outcome.EXISTS)


# --- account keys ---------------------------------------------------------------------------


def user_account(user_id: int, asset: str) -> str:
    return f"user:{user_id}:{asset}"


def system_account(name: str, asset: str) -> str:
    """The logical system account; a transfer lands on one of its shards (``shard_key``)."""
    return f"sys:{name}:{asset}"


def shard_key(key: str, transfer_id: str) -> str:
    """The shard of a system account a transfer uses: a function of the transfer id, so that a
    retried transfer names the same row and is recognised as the same transfer."""
    if not key.startswith("sys:") or key.count(":") != 2:
        return key
    return f"{key}:{zlib.crc32(transfer_id.encode()) % SYSTEM_SHARDS}"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What an account key says about the account it names."""

    key: str
    asset: str
    owner_id: int | None
    code: str
    flags: AccountFlags

    @classmethod
    def parse(cls, key: str) -> AccountSpec:
        parts = key.split(":")
        if len(parts) == 3 and parts[0] == "user" and parts[1].isdigit() and parts[2] in ASSETS:
            owner = int(parts[1])
            if owner > 0:
                return cls(
                    key, parts[2], owner, "user", AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
                )
        if (
            len(parts) == 4
            and parts[0] == "sys"
            and _SYSTEM_NAME.fullmatch(parts[1])
            and parts[2] in ASSETS
            and parts[3].isdigit()
            and int(parts[3]) < SYSTEM_SHARDS
        ):
            return cls(key, parts[2], None, parts[1], AccountFlags.NONE)
        raise ValueError(f"not an account key: {key!r}")


# --- transfers ------------------------------------------------------------------------------

Metadata = Mapping[str, str | int | bool]


def encode_metadata(metadata: Metadata) -> str:
    """Canonical JSON (sorted keys, no spaces): the exact text is hashed and compared."""
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str | int | bool):
            raise ValueError("metadata maps names to strings, integers or booleans")
    text = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return text


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A transfer as a caller asks for it.

    Accounts are keys (``user:42:PTS``, ``sys:rewards:PTS``).  A POST or VOID names the pending
    transfer and may leave out accounts and asset (they are the pending transfer's); a POST with
    no amount posts all of it.  ``linked`` ties this transfer to the next one in the batch: a
    chain of linked transfers succeeds or fails as one.
    """

    id: str
    code: str
    amount: int = 0
    debit: str | None = None
    credit: str | None = None
    asset: str | None = None
    kind: TransferKind = TransferKind.POSTED
    pending_id: str | None = None
    timeout: int = 0
    """Seconds until a pending transfer expires (0: never)."""
    metadata: Metadata = field(default_factory=dict)
    linked: bool = False
    encoded_metadata: str = field(init=False, repr=False, compare=False)
    """``metadata`` as stored and hashed, encoded once here."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _TRANSFER_ID.fullmatch(self.id):
            raise ValueError("transfer id: 1-64 characters of A-Z a-z 0-9 : . _ -")
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise ValueError("transfer code: a lowercase word of up to 32 characters")
        if type(self.amount) is not int or not 0 <= self.amount <= MAX_UNITS:
            raise ValueError("amount: a whole number of units, 0 to 2**63-1")
        if self.asset is not None and self.asset not in ASSETS:
            raise ValueError(f"unknown asset {self.asset!r}")
        if type(self.timeout) is not int or not 0 <= self.timeout <= MAX_TIMEOUT_SECONDS:
            raise ValueError(f"timeout: 0 to {MAX_TIMEOUT_SECONDS} seconds")
        object.__setattr__(self, "encoded_metadata", encode_metadata(self.metadata))
        resolving = self.kind in (TransferKind.POST, TransferKind.VOID)
        if resolving != (self.pending_id is not None):
            raise ValueError("pending_id is required by post and void, and only by them")
        if not resolving:
            if self.debit is None or self.credit is None or self.asset is None:
                raise ValueError("debit, credit and asset are required")
            if self.amount == 0:
                raise ValueError("amount must be positive")
        if self.timeout and self.kind is not TransferKind.PENDING:
            raise ValueError("only a pending transfer has a timeout")


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as stored: immutable once written.  Times are microseconds since the epoch."""

    id: str
    debit_account_id: int
    credit_account_id: int
    asset: str
    amount: int
    kind: TransferKind
    pending_id: str | None
    expires_at: int | None
    code: str
    metadata: str
    timestamp: int

    def same_request(self, other: Transfer) -> bool:
        """Whether ``other`` asks for what this one recorded (an idempotent retry)."""
        return (
            self.debit_account_id == other.debit_account_id
            and self.credit_account_id == other.credit_account_id
            and self.asset == other.asset
            and self.amount == other.amount
            and self.kind == other.kind
            and self.pending_id == other.pending_id
            and self.timeout == other.timeout
            and self.code == other.code
            and self.metadata == other.metadata
        )

    @property
    def timeout(self) -> int:
        if self.expires_at is None:
            return 0
        return (self.expires_at - self.timestamp) // 1_000_000


@dataclass(slots=True)
class Balance:
    """An account's four counters (TigerBeetle's), with its identity and flags."""

    id: int
    key: str
    asset: str
    flags: AccountFlags
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def balance(self) -> int:
        """Credit-normal balance (what a user holds)."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending

    def copy(self) -> Balance:
        return Balance(
            self.id,
            self.key,
            self.asset,
            self.flags,
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
        )

    def violation(self) -> Outcome | None:
        """Why these counters may not be stored, if they may not."""
        if (
            max(
                self.debits_pending + self.debits_posted, self.credits_pending + self.credits_posted
            )
            > MAX_UNITS
        ):
            return Outcome.OVERFLOW
        flags = self.flags
        if flags & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS and (
            self.debits_pending + self.debits_posted > self.credits_posted
        ):
            return Outcome.EXCEEDS_CREDITS
        if flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS and (
            self.credits_pending + self.credits_posted > self.debits_posted
        ):
            return Outcome.EXCEEDS_DEBITS
        return None
