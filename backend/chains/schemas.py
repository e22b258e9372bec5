"""What the wallet routes take and say.  One body for linking and for signing in: ``kind``
says which proof it carries (TON Connect's ``ton_proof`` fields, or a SIWE message)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from backend.chains.models import LinkedWallet, WalletChallenge
from backend.chains.service import SiweProof, WalletProof
from backend.chains.siwe import MAX_SIGNATURE_BYTES
from backend.chains.tonproof import TonProof
from backend.chains.wallets import BadWalletInput, WalletKind

Text = Annotated[str, msgspec.Meta(max_length=256)]


class ChallengeRequest(msgspec.Struct, forbid_unknown_fields=True):
    kind: WalletKind


class ChallengeView(msgspec.Struct):
    kind: str
    challenge: str
    """The ton_proof ``payload`` to request from TON Connect, or the SIWE ``Nonce``; once."""
    expires_at: datetime
    domain: str
    """The domain the proof or message must name."""
    uri: str
    """SIWE: the URI the message must name (on this origin)."""
    chain_ids: list[int]
    """SIWE: the chain ids a message may name."""


class TonDomain(msgspec.Struct, forbid_unknown_fields=True):
    length_bytes: Annotated[int, msgspec.Meta(ge=0, le=1024)] = msgspec.field(name="lengthBytes")
    value: Text


class TonProofBody(msgspec.Struct, forbid_unknown_fields=True):
    """TON Connect's ``ton_proof`` reply item's ``proof``, as the wallet sent it."""

    timestamp: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    domain: TonDomain
    signature: Text
    """Base64."""
    payload: Text


class WalletProofBody(msgspec.Struct, forbid_unknown_fields=True):
    kind: WalletKind
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    """TON: the account's address (raw ``0:hex`` or user-friendly); EVM: EIP-55 ``0x...``."""
    proof: TonProofBody | None = None
    """ton_proof: the proof."""
    state_init: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    """ton_proof: the account's ``walletStateInit`` (base64 BOC)."""
    public_key: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """ton_proof: the account's ``publicKey`` (hex), checked against the stateInit's."""
    network: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    """ton_proof: the account's ``network`` (informational)."""
    message: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    """siwe: the EIP-4361 message, exactly as signed."""
    signature: Annotated[str, msgspec.Meta(max_length=2 + 2 * MAX_SIGNATURE_BYTES)] | None = None
    """siwe: the personal_sign signature, 0x and hex: 65 bytes from an account's own key, up to
    4 KiB from a contract wallet (EIP-1271)."""

    def to_proof(self) -> WalletProof:
        if self.kind == "siwe":
            if self.message is None or self.signature is None:
                raise BadWalletInput("siwe needs message and signature")
            return SiweProof(self.address, self.message, self.signature)
        if self.proof is None or self.state_init is None:
            raise BadWalletInput("ton_proof needs proof and state_init")
        return TonProof(
            address=self.address,
            state_init=self.state_init,
            timestamp=self.proof.timestamp,
            domain=self.proof.domain.value,
            domain_length=self.proof.domain.length_bytes,
            payload=self.proof.payload,
            signature=self.proof.signature,
            public_key=self.public_key,
        )


class WalletView(msgspec.Struct):
    id: int
    kind: str
    address: str
    created_at: datetime

    @classmethod
    def of(cls, wallet: LinkedWallet) -> WalletView:
        assert wallet.id is not None
        return cls(wallet.id, wallet.kind, wallet.address, wallet.created_at)


def challenge_view(
    row: WalletChallenge, *, domain: str, uri: str, chain_ids: list[int]
) -> ChallengeView:
    return ChallengeView(row.kind, row.nonce, row.expires_at, domain, uri, chain_ids)
