"""Wallets: challenges issued and spent, proofs checked, wallets linked, listed, unlinked, and
the user a linked wallet signs in as.  Transport-neutral; the request's unit of work commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.audit.service import AuditContext, record
from backend.chains.models import LinkedWallet, WalletChallenge
from backend.chains.rpc import EvmRpc, RpcError
from backend.chains.siwe import (
    SiweUnverifiable,
    SiweVerdict,
    personal_sign_hash,
    refused,
    verify_siwe,
)
from backend.chains.tonproof import TonProof, verify_ton_proof
from backend.chains.wallets import (
    WalletKind,
    WalletNotFound,
    WalletNotLinked,
    WalletProofRefused,
    WalletTaken,
)
from backend.clock import utcnow
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.points.service import Points
from backend.users.models import User
from backend.users.service import get_user

log = structlog.get_logger(__name__)

# 128 bits: beyond guessing; hex, so it is also a valid SIWE nonce (letters and digits).
CHALLENGE_BYTES = 16
# A contract wallet's check holds a user's request open: a node slower than this is taken as
# down (two calls, so the request waits at most twice this).
NODE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class SiweProof:
    address: str
    message: str
    signature: str


WalletProof = TonProof | SiweProof


@dataclass(frozen=True, slots=True)
class Proven:
    kind: WalletKind
    address: str
    """Normalised: TON raw ``workchain:hex``, EVM EIP-55; an EVM contract wallet (EIP-1271)
    with its chain, CAIP-10 ``eip155:<chain id>:<EIP-55>``."""


@dataclass(frozen=True, slots=True)
class Linked:
    wallet: LinkedWallet
    created: bool
    """False when the user had linked this wallet before."""


class Wallets:
    def __init__(self, points: Points, settings: Settings) -> None:
        self.points = points
        self.settings = settings.wallets
        self.origin = settings.app.base_url
        parts = urlsplit(self.origin)
        self.scheme = parts.scheme
        self.domain = parts.netloc
        """Our host (and port, when not the scheme's): the domain a proof must name."""
        self.chain_ids = frozenset(self.settings.siwe_chain_ids)
        self.nodes = {
            chain.chain_id: chain.rpc_url for chain in settings.chains.evm.values() if chain.rpc_url
        }
        """Chain id -> JSON-RPC URL: where a contract wallet's signature is checked (EIP-1271)."""

    async def challenge(self, uow: UnitOfWork, kind: WalletKind) -> WalletChallenge:
        """A fresh payload (ton_proof) or nonce (SIWE), single-use, expiring."""
        now = utcnow()
        await uow.session.exec(
            delete(WalletChallenge).where(col(WalletChallenge.expires_at) <= now)
        )
        row = WalletChallenge(
            nonce=secrets.token_hex(CHALLENGE_BYTES),
            kind=kind,
            expires_at=now + timedelta(seconds=self.settings.challenge_ttl_seconds),
        )
        uow.session.add(row)
        await uow.session.flush()
        return row

    async def prove(self, uow: UnitOfWork, proof: WalletProof) -> Proven:
        """The wallet, if the proof verifies and its challenge is ours, unused and current;
        the challenge is spent with the request's transaction."""
        now = utcnow()
        max_age = timedelta(seconds=self.settings.proof_max_age_seconds)
        skew = timedelta(seconds=self.settings.clock_skew_seconds)
        if isinstance(proof, TonProof):
            address = verify_ton_proof(
                proof, domain=self.domain, now=now, max_age=max_age, skew=skew
            )
            await self._spend(uow.session, "ton_proof", proof.payload, now)
            return Proven("ton_proof", address)
        verdict = verify_siwe(
            proof.message,
            proof.signature,
            address=proof.address,
            domain=self.domain,
            origin=self.origin,
            chain_ids=self.chain_ids,
            now=now,
            max_age=max_age,
            skew=skew,
        )
        address = verdict.message.address
        if not verdict.signed:
            # The challenge first: a made-up one must not cost two calls to the node.
            await self._check_unspent(uow.session, verdict.message.nonce, now)
            await self._contract_vouches(verdict, proof.message)
            # A contract's address names different code, and owners, on each chain: the
            # wallet is this chain's (CAIP-10), and only this chain's proofs find it.
            address = f"eip155:{verdict.message.chain_id}:{address}"
        await self._spend(uow.session, "siwe", verdict.message.nonce, now)
        return Proven("siwe", address)

    async def _check_unspent(self, session: AsyncSession, nonce: str, now: datetime) -> None:
        found = await session.get(WalletChallenge, nonce)
        if found is None or found.kind != "siwe" or found.expires_at <= now:
            raise WalletProofRefused(
                "the challenge is not one we issued, was used already, or expired: ask again",
                code="siwe_unknown_challenge",
            )

    async def _contract_vouches(self, verdict: SiweVerdict, text: str) -> None:
        """Refused unless the address is a contract wallet on the message's chain that accepts
        the signature (EIP-1271); asked before any write, so no transaction waits on the node."""
        message = verdict.message
        url = self.nodes.get(message.chain_id)
        if url is None:
            raise refused("bad_signature", "the signature is not the address's")
        rpc = EvmRpc(url, client=httpx.AsyncClient(timeout=NODE_TIMEOUT_SECONDS))
        try:
            valid = bool(await rpc.code(message.address)) and await rpc.is_valid_signature(
                message.address, personal_sign_hash(text), verdict.signature
            )
        except RpcError as exc:
            log.warning("siwe_node_failed", chain_id=message.chain_id, error=str(exc))
            raise SiweUnverifiable(
                f"chain {message.chain_id}'s node did not answer whether this contract wallet "
                "signed: try again shortly"
            ) from exc
        finally:
            await rpc.close()
        if not valid:
            raise refused("bad_signature", "the signature is not the address's")

    async def _spend(
        self, session: AsyncSession, kind: WalletKind, nonce: str, now: datetime
    ) -> None:
        result = await session.exec(
            delete(WalletChallenge).where(
                col(WalletChallenge.nonce) == nonce,
                col(WalletChallenge.kind) == kind,
                col(WalletChallenge.expires_at) > now,
            )
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            raise WalletProofRefused(
                "the challenge is not one we issued, was used already, or expired: ask again",
                code=f"{kind}_unknown_challenge",
            )

    async def link(
        self, uow: UnitOfWork, audit: AuditContext, user_id: int, proof: WalletProof
    ) -> Linked:
        """Link the proven wallet to ``user_id``; the first wallet a user links pays the
        wallet-link award (once per user, whatever they link or unlink later)."""
        proven = await self.prove(uow, proof)
        existing = await self._find(uow.session, proven)
        if existing is not None:
            if existing.user_id != user_id:
                raise WalletTaken("this wallet is linked to another account")
            return Linked(existing, created=False)
        wallet = LinkedWallet(user_id=user_id, kind=proven.kind, address=proven.address)
        uow.session.add(wallet)
        try:
            async with uow.session.begin_nested():
                await uow.session.flush()
        except IntegrityError:
            # Another request linked it between our read and our insert.
            raise WalletTaken("this wallet is linked to another account") from None
        await record(
            uow.session,
            audit,
            "wallet.link",
            target=f"user:{user_id}",
            details={"wallet_id": wallet.id, "kind": proven.kind, "address": proven.address},
        )
        await self.points.record_wallet_link(uow, user_id, proven.address)
        return Linked(wallet, created=True)

    async def wallets(self, session: AsyncSession, user_id: int) -> list[LinkedWallet]:
        result = await session.exec(
            select(LinkedWallet)
            .where(col(LinkedWallet.user_id) == user_id)
            .order_by(col(LinkedWallet.id))
        )
        return list(result.all())

    async def unlink(
        self, uow: UnitOfWork, audit: AuditContext, user_id: int, wallet_id: int
    ) -> None:
        wallet = await uow.session.get(LinkedWallet, wallet_id)
        if wallet is None or wallet.user_id != user_id:
            raise WalletNotFound(f"no wallet {wallet_id} of yours")
        await uow.session.delete(wallet)
        await record(
            uow.session,
            audit,
            "wallet.unlink",
            target=f"user:{user_id}",
            details={"wallet_id": wallet_id, "kind": wallet.kind, "address": wallet.address},
        )

    async def sign_in(self, uow: UnitOfWork, proof: WalletProof) -> User:
        """The user the proven wallet is linked to."""
        proven = await self.prove(uow, proof)
        wallet = await self._find(uow.session, proven)
        if wallet is None:
            raise WalletNotLinked("link this wallet in the mini-app first")
        return await get_user(uow.session, wallet.user_id)

    @staticmethod
    async def _find(session: AsyncSession, proven: Proven) -> LinkedWallet | None:
        result = await session.exec(
            select(LinkedWallet).where(
                col(LinkedWallet.kind) == proven.kind,
                col(LinkedWallet.address) == proven.address,
            )
        )
        return result.first()
