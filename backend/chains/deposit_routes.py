"""HTTP: the chains deposits are taken on, a user's deposit address, and their deposits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from backend.auth.sessions import PUBLIC, SignedIn, signed_in_id
from backend.chains.deposit_queries import ChainAsset, ChainDeposits, ChainInfo, remember_address
from backend.chains.evm import chain_user_id
from backend.db.uow import UnitOfWork
from backend.openapi import errors

Short = Annotated[str, Parameter(max_length=16)]


class WithdrawalTermsView(msgspec.Struct):
    """In the asset's units, decimal strings."""

    fee: str
    """Taken from the amount: what arrives is the amount less the fee."""
    minimum: str
    maximum: str
    """The most one withdrawal may be."""
    daily: str
    """The most one user may withdraw in 24 hours."""
    approval_above: str
    """Larger withdrawals wait for an admin's approval."""


class ChainAssetView(msgspec.Struct):
    asset: str
    token: str
    """The token contract on this chain."""
    decimals: int
    """The token's decimals on this chain; balances use the asset's own (USDT: 6)."""
    minimum: str
    """Smaller deposits are not credited."""
    withdrawals: WithdrawalTermsView | None
    """Fee and limits of withdrawals of this asset here; null where it is not paid out."""

    @classmethod
    def of(cls, asset: ChainAsset) -> ChainAssetView:
        terms = asset.withdrawals
        view = None
        if terms is not None:
            view = WithdrawalTermsView(
                terms.fee, terms.minimum, terms.maximum, terms.daily, terms.approval_above
            )
        return cls(asset.asset, asset.token, asset.decimals, asset.minimum, view)


class ChainView(msgspec.Struct):
    chain: str
    chain_id: int
    confirmations: int
    """Blocks, the deposit's own included, before a deposit is credited."""
    vault: str
    open: bool
    """Whether deposits are taken on this chain now (a vault is configured)."""
    assets: list[ChainAssetView]
    withdrawals_open: bool
    """Whether withdrawals are paid on this chain now (a node and a vault are configured)."""

    @classmethod
    def of(cls, info: ChainInfo) -> ChainView:
        assets = [ChainAssetView.of(a) for a in info.assets]
        return cls(
            info.chain,
            info.chain_id,
            info.confirmations,
            info.vault,
            info.open,
            assets,
            info.withdrawals_open,
        )


class DepositAddressView(msgspec.Struct):
    chain: str
    asset: str
    address: str
    """Send the token here (or call the vault's ``depositToken`` with your user id)."""
    user_id: str
    """Your id as the vault knows it (bytes32, hex)."""


class DepositView(msgspec.Struct):
    chain: str
    tx_hash: str
    log_index: int
    asset: str
    amount: str
    block_number: int
    confirmations: int
    required: int
    status: str
    """``seen``, ``credited``, ``dropped`` (its block left the chain), ``below_minimum``."""
    created_at: datetime
    credited_at: datetime | None


class ChainsController(Controller):
    path = "/api/chains"
    tags = ["deposits"]

    @get(opt=PUBLIC)
    async def chains(self, chain_deposits: NamedDependency[ChainDeposits]) -> list[ChainView]:
        """The chains deposits are taken on: assets, token decimals, confirmations, minimums."""
        return [ChainView.of(info) for info in chain_deposits.chains()]


class DepositsController(Controller):
    path = "/api/deposits"
    tags = ["deposits"]

    @get("/address", responses=errors(400, 409))
    async def address(
        self,
        request: SignedIn,
        chain: Short,
        asset: Short,
        uow: NamedDependency[UnitOfWork],
        chain_deposits: NamedDependency[ChainDeposits],
    ) -> DepositAddressView:
        """My deposit address on a chain: the vault's forwarder for my user id.  What arrives
        there is swept into the vault and credited after the chain's confirmations."""
        user_id = signed_in_id(request)
        found = chain_deposits.address(user_id, chain, asset)
        await remember_address(uow.session, user_id, chain, found)
        return DepositAddressView(chain, asset, found, "0x" + chain_user_id(user_id).hex())

    @get()
    async def mine(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        chain_deposits: NamedDependency[ChainDeposits],
    ) -> list[DepositView]:
        """My deposits, newest first, with their confirmations so far."""
        found = await chain_deposits.deposits(uow.session, signed_in_id(request))
        return [
            DepositView(
                d.chain,
                d.tx_hash,
                d.log_index,
                d.asset,
                d.amount,
                d.block_number,
                d.confirmations,
                d.required,
                d.status,
                d.created_at,
                d.credited_at,
            )
            for d in found
        ]
