"""Wallets the tests sign with: TON wallets (v3r2, v4r2, W5) built from the real code cells and
an Ed25519 key, and Ethereum accounts signing EIP-4361 messages."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from pytoniq_core.boc.address import Address
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from backend.chains.tonproof import proof_message, signed_digest
from backend.chains.wallets import WALLET_CODES

DOMAIN = "app.example.test"  # make_settings' APP_PUBLIC_URL
ORIGIN = f"https://{DOMAIN}"
# The default subwallet id of v3/v4 wallets on workchain 0.
SUBWALLET = 698983191


def code_cell(name: str) -> Cell:
    boc = next(code.boc for code in WALLET_CODES.values() if code.name == name)
    return Cell.one_from_boc(bytes.fromhex(boc))


def data_cell(name: str, public_key: bytes) -> Cell:
    builder = Builder()
    if name.startswith("w5"):
        builder.store_bool(True)  # is_signature_allowed
    builder.store_uint(0, 32).store_uint(SUBWALLET, 32).store_bytes(public_key)
    if not name.startswith("v3"):
        builder.store_dict(None)  # v4: plugins, W5: extensions
    return builder.end_cell()


@dataclass
class TonWallet:
    version: str = "v4r2"
    workchain: int = 0
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def state_init(self, code: Cell | None = None) -> Cell:
        cell: Cell = StateInit(
            code=code or code_cell(self.version), data=data_cell(self.version, self.public_key)
        ).serialize()
        return cell

    @property
    def address(self) -> Address:
        return Address((self.workchain, self.state_init().hash))

    @property
    def raw(self) -> str:
        return f"{self.workchain}:{self.state_init().hash.hex()}"

    def body(
        self,
        payload: str,
        timestamp: int,
        *,
        domain: str = DOMAIN,
        address: str | None = None,
        state_init: Cell | None = None,
        signer: Ed25519PrivateKey | None = None,
    ) -> dict[str, Any]:
        """A link or sign-in body as the mini-app forwards TON Connect's reply."""
        target = Address(address) if address else self.address
        message = proof_message(target, domain.encode(), timestamp, payload.encode())
        signature = (signer or self.key).sign(signed_digest(message))
        return {
            "kind": "ton_proof",
            "address": address or self.raw,
            "network": "-239",
            "public_key": self.public_key.hex(),
            "state_init": base64.b64encode((state_init or self.state_init()).to_boc()).decode(),
            "proof": {
                "timestamp": timestamp,
                "domain": {"lengthBytes": len(domain.encode()), "value": domain},
                "signature": base64.b64encode(signature).decode(),
                "payload": payload,
            },
        }


def siwe_text(
    address: str,
    nonce: str,
    issued_at: datetime,
    *,
    domain: str = DOMAIN,
    uri: str = ORIGIN,
    chain_id: int = 1,
    statement: str | None = "Link this wallet to SimplRefQ.",
    expiration: datetime | None = None,
    not_before: datetime | None = None,
    resources: tuple[str, ...] = (),
) -> str:
    lines = [f"{domain} wants you to sign in with your Ethereum account:", address, ""]
    if statement is not None:
        lines.append(statement)
    lines += [
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {stamp(issued_at)}",
    ]
    if expiration is not None:
        lines.append(f"Expiration Time: {stamp(expiration)}")
    if not_before is not None:
        lines.append(f"Not Before: {stamp(not_before)}")
    if resources:
        lines.append("Resources:")
        lines += [f"- {resource}" for resource in resources]
    return "\n".join(lines)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class EthWallet:
    account: LocalAccount = field(default_factory=Account.create)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign(self, text: str) -> str:
        signed = self.account.sign_message(encode_defunct(text=text))
        return "0x" + bytes(signed.signature).hex()

    def body(self, text: str, *, signer: EthWallet | None = None) -> dict[str, Any]:
        return {
            "kind": "siwe",
            "address": self.address,
            "message": text,
            "signature": (signer or self).sign(text),
        }
