"""The hash chains over transfers: each transfer's hash covers its fields and the previous
transfer's hash, so editing, removing or reordering any stored transfer is detectable.

There are several chains, each a strict sequence: a transaction appends to one of them and holds
its head until it commits, so the number of chains is the number of transactions that can
append at the same moment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from backend.ledger.domain import Transfer

# Writers that can append at once.  More chains spread lock waits thinner but make verification
# walk more sequences; eight covers the API workers and the engine's settlement writers.
CHAINS = 8
GENESIS = bytes(32)
_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in an id, a code or an account id


@dataclass(slots=True)
class ChainHead:
    chain: int
    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Link:
    """Where a transfer sits in its chain."""

    chain: int
    seq: int
    prev_hash: bytes
    hash: bytes


def transfer_hash(transfer: Transfer, chain: int, seq: int, prev_hash: bytes) -> bytes:
    fields = (
        transfer.id,
        str(transfer.debit_account_id),
        str(transfer.credit_account_id),
        transfer.asset,
        str(transfer.amount),
        transfer.kind.value,
        transfer.pending_id or "",
        "" if transfer.expires_at is None else str(transfer.expires_at),
        transfer.code,
        transfer.metadata,
        str(transfer.timestamp),
        str(chain),
        str(seq),
    )
    digest = hashlib.sha256(prev_hash)
    digest.update(_SEPARATOR.join(fields).encode())
    return digest.digest()


def extend(head: ChainHead, transfers: list[Transfer]) -> list[Link]:
    """Append ``transfers`` to the chain ``head`` names, moving the head past them."""
    links = []
    for transfer in transfers:
        seq = head.seq + 1
        digest = transfer_hash(transfer, head.chain, seq, head.hash)
        links.append(Link(head.chain, seq, head.hash, digest))
        head.seq, head.hash = seq, digest
    return links
