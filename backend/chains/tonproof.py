"""TON Connect ``ton_proof``, verified on the server (pure: no I/O, the clock passed in).

The wallet signs, with the key of the wallet contract at ``address``::

    message   = "ton-proof-item-v2/" ‖ workchain (int32 BE) ‖ address hash (32 bytes)
                ‖ len(domain) (uint32 LE) ‖ domain ‖ timestamp (uint64 LE) ‖ payload
    signature = Ed25519(sha256(0xffff ‖ "ton-connect" ‖ sha256(message)))

The key is read from the wallet's ``stateInit``, which must hash to the address: that binds the
key to the address without asking the chain, so an undeployed wallet proves itself too.  Whether
the payload is one we issued (and unused) is the service's business.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from backend.chains.wallets import WALLET_CODES, BadWalletInput, WalletProofRefused

PREFIX = b"ton-proof-item-v2/"
SIGN_PREFIX = b"\xff\xff" + b"ton-connect"
# A stateInit BOC of a standard wallet is well under 1 KB (v4r2's code is 740 bytes); a
# larger one is no wallet we know, and is not worth parsing.
MAX_STATE_INIT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class TonProof:
    """What TON Connect hands the app: the account's address and stateInit, and the proof."""

    address: str
    state_init: str
    """Base64 BOC (the account's ``walletStateInit``)."""
    timestamp: int
    domain: str
    domain_length: int
    """The proof's ``domain.lengthBytes``: must be the domain's UTF-8 length."""
    payload: str
    signature: str
    """Base64, 64 bytes."""
    public_key: str | None = None
    """Hex, as the account reports it; when given, it must be the stateInit's."""


def refused(code: str, message: str) -> WalletProofRefused:
    return WalletProofRefused(message, code=f"ton_proof_{code}")


def raw_address(text: str) -> Address:
    try:
        return Address(text)
    except Exception as exc:  # pytoniq raises plain Exceptions for malformed input
        raise BadWalletInput(f"not a TON address: {text[:80]!r}") from exc


def normalised(address: Address) -> str:
    """The raw form, ``workchain:hex``, that every spelling of an address shares."""
    return f"{address.wc}:{bytes(address.hash_part).hex()}"


def proof_message(address: Address, domain: bytes, timestamp: int, payload: bytes) -> bytes:
    return (
        PREFIX
        + address.wc.to_bytes(4, "big", signed=True)
        + address.hash_part
        + len(domain).to_bytes(4, "little")
        + domain
        + timestamp.to_bytes(8, "little")
        + payload
    )


def signed_digest(message: bytes) -> bytes:
    return hashlib.sha256(SIGN_PREFIX + hashlib.sha256(message).digest()).digest()


def state_init_of(boc: str) -> Cell:
    try:
        raw = base64.b64decode(boc, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadWalletInput("stateInit is not base64") from exc
    if len(raw) > MAX_STATE_INIT_BYTES:
        raise BadWalletInput("stateInit is too large for a wallet")
    try:
        return Cell.one_from_boc(raw)
    except Exception as exc:
        raise BadWalletInput("stateInit is not a BOC") from exc


def public_key_of(cell: Cell) -> bytes:
    """The Ed25519 key in a standard wallet's data, found by the wallet's code hash."""
    try:
        state = StateInit.deserialize(cell.begin_parse())  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise BadWalletInput("stateInit does not parse") from exc
    if state.code is None or state.data is None:
        raise refused("unknown_wallet", "the stateInit has no code or no data")
    wallet = WALLET_CODES.get(state.code.hash.hex())
    if wallet is None:
        raise refused("unknown_wallet", "not a wallet contract we know (v3, v4 or W5)")
    data = state.data.begin_parse()
    try:
        data.skip_bits(wallet.key_offset)
        return bytes(data.load_bytes(32))
    except Exception as exc:
        raise refused("unknown_wallet", f"the {wallet.name} data cell is too short") from exc


def verify_ton_proof(
    proof: TonProof, *, domain: str, now: datetime, max_age: timedelta, skew: timedelta
) -> str:
    """The wallet's normalised address if ``proof`` verifies for ``domain`` at ``now``."""
    address = raw_address(proof.address)
    if proof.domain != domain:
        raise refused("wrong_domain", "the proof is for another domain")
    encoded_domain = proof.domain.encode()
    if proof.domain_length != len(encoded_domain):
        raise refused("bad_domain", "domain.lengthBytes is not the domain's length")
    if not 0 <= proof.timestamp < 2**63:
        raise refused("bad_timestamp", "timestamp out of range")
    signed_at = now.timestamp()
    if proof.timestamp > signed_at + skew.total_seconds():
        raise refused("future", "the proof is dated in the future")
    if proof.timestamp < signed_at - max_age.total_seconds():
        raise refused("expired", "the proof is too old: sign again")
    cell = state_init_of(proof.state_init)
    if cell.hash != address.hash_part:
        raise refused("wrong_address", "the stateInit is not this address's")
    key = public_key_of(cell)
    if proof.public_key is not None and proof.public_key.lower() != key.hex():
        raise refused("wrong_key", "the public key is not the stateInit's")
    try:
        signature = base64.b64decode(proof.signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadWalletInput("signature is not base64") from exc
    message = proof_message(address, encoded_domain, proof.timestamp, proof.payload.encode())
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, signed_digest(message))
    except (InvalidSignature, ValueError) as exc:
        raise refused("bad_signature", "the signature does not verify") from exc
    return normalised(address)
