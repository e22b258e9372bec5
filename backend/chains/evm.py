"""The EVM side of deposits, pure: user ids as the vault sees them, deposit addresses, the
vault's ``Deposited`` log, and token amounts in ledger units.  ``rpc.py`` does the I/O.

A user's id on chain is the internal user id as a big-endian bytes32 (user 42 is ``0x00…2a``):
reversible with no table, and never a secret (the deposit address is public anyway).  The
deposit address is the vault's CREATE2 forwarder for that id, computed here exactly as
``Vault.forwarderAddress`` does, so it is known before the forwarder is deployed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

# keccak("Deposited(bytes32,address,address,uint256)"): the event's topic 0.
DEPOSITED_TOPIC = "0x" + keccak(text="Deposited(bytes32,address,address,uint256)").hex()
# The token address the vault's ``Deposited`` names for the chain's native coin
# (``Vault.NATIVE``), and that coin's decimals (ETH and BNB both have 18).
NATIVE = "0x" + "00" * 20
NATIVE_DECIMALS = 18
# ``users.id`` is a PostgreSQL INTEGER: a bytes32 above this names no user of ours (and must not
# reach a query, where asyncpg would refuse it).
MAX_USER_ID = 2**31 - 1


def chain_user_id(user_id: int) -> bytes:
    """The vault's bytes32 user id for an internal user id."""
    return user_id.to_bytes(32, "big")


def internal_user_id(chain_id: bytes) -> int | None:
    """The internal user id a vault user id names, or None (it names no user of ours)."""
    value = int.from_bytes(chain_id, "big")
    return value if 0 < value <= MAX_USER_ID else None


@cache
def forwarder_creation_code(artifact: Path) -> bytes:
    """The DepositForwarder's creation code, from its compiled artifact (read once)."""
    data = json.loads(artifact.read_text())
    return bytes.fromhex(str(data["bytecode"]).removeprefix("0x"))


def deposit_address(vault: str, user_id: int, creation_code: bytes) -> str:
    """CREATE2: keccak(0xff ++ vault ++ salt ++ keccak(init code))[12:], the salt and the
    constructor argument both the bytes32 user id (``Vault.deployForwarder``)."""
    salt = chain_user_id(user_id)
    init_code = creation_code + salt  # abi.encode(bytes32) is the 32 bytes themselves
    digest = keccak(b"\xff" + bytes.fromhex(vault.removeprefix("0x")) + salt + keccak(init_code))
    return to_checksum_address(digest[12:])


@dataclass(frozen=True, slots=True)
class DepositLog:
    """One ``Deposited(bytes32 indexed userId, address indexed from, address indexed token,
    uint256 amount)`` log."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    user_id: bytes
    sender: str
    token: str
    amount: int


def decode_deposit(log: dict[str, object]) -> DepositLog:
    """A log as ``eth_getLogs`` returns it (hex strings), decoded."""
    topics = [str(topic) for topic in log["topics"]]  # type: ignore[attr-defined]
    if len(topics) != 4 or topics[0] != DEPOSITED_TOPIC:
        raise ValueError("not a Deposited log")
    return DepositLog(
        tx_hash=str(log["transactionHash"]).lower(),
        log_index=int(str(log["logIndex"]), 16),
        block_number=int(str(log["blockNumber"]), 16),
        block_hash=str(log["blockHash"]).lower(),
        user_id=bytes.fromhex(topics[1].removeprefix("0x")),
        sender=to_checksum_address("0x" + topics[2][-40:]),
        token=to_checksum_address("0x" + topics[3][-40:]),
        amount=int(str(log["data"]), 16),
    )


def to_ledger_units(raw: int, decimals: int, scale: int) -> int:
    """A token amount in the ledger's units, rounded down: the dust stays on chain (USDT on
    BNB Chain has 18 decimals, the ledger keeps 6)."""
    factor: int = 10 ** abs(decimals - scale)
    return raw // factor if decimals >= scale else raw * factor
