"""What users ask about on-chain deposits: the chains served, their deposit address on each,
and their deposits.  No node is asked: the address is computed (``evm.deposit_address``) and
confirmations are counted up to the watcher's cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chains.deposit_models import ChainCursor, ChainDeposit, DepositAddress
from backend.chains.evm import NATIVE, NATIVE_DECIMALS, deposit_address, forwarder_creation_code
from backend.clock import utcnow
from backend.config import ChainsSettings, EvmChainSettings, WithdrawalLimits
from backend.db.engine import insert_for
from backend.errors import BadRequest, Conflict
from backend.ledger.assets import ASSETS

# A user's deposit list shows at most this many, newest first.
DEPOSITS_PAGE = 100


class UnknownChain(BadRequest):
    code = "unknown_chain"


class UnknownDepositAsset(BadRequest):
    code = "unknown_asset"


class DepositsUnavailable(Conflict):
    """The chain is listed but no vault is configured for it here."""

    code = "deposits_unavailable"


@dataclass(frozen=True, slots=True)
class WithdrawalTerms:
    """An asset's withdrawal limits on a chain, as decimal strings in the asset's units."""

    fee: str
    minimum: str
    maximum: str
    daily: str
    approval_above: str

    @classmethod
    def of(cls, limits: WithdrawalLimits) -> WithdrawalTerms:
        return cls(
            f"{limits.fee:f}",
            f"{limits.minimum:f}",
            f"{limits.maximum:f}",
            f"{limits.daily:f}",
            f"{limits.approval_above:f}",
        )


@dataclass(frozen=True, slots=True)
class ChainAsset:
    asset: str
    token: str
    decimals: int
    """The token's decimals on this chain (the ledger keeps the asset's own scale)."""
    minimum: str
    withdrawals: WithdrawalTerms | None
    """None where the asset is not paid out on this chain."""


@dataclass(frozen=True, slots=True)
class ChainInfo:
    chain: str
    chain_id: int
    confirmations: int
    vault: str
    open: bool
    """Whether deposits are taken here (a vault is configured)."""
    assets: list[ChainAsset]
    withdrawals_open: bool
    """Whether withdrawals are taken here (a node, a vault and the operator's key)."""


@dataclass(frozen=True, slots=True)
class DepositEntry:
    chain: str
    tx_hash: str
    log_index: int
    asset: str
    amount: str
    block_number: int
    confirmations: int
    required: int
    status: str
    created_at: datetime
    credited_at: datetime | None


class ChainDeposits:
    def __init__(self, settings: ChainsSettings) -> None:
        self.settings = settings

    def chains(self) -> list[ChainInfo]:
        return [self._info(name, chain) for name, chain in self.settings.evm.items()]

    def _info(self, name: str, chain: EvmChainSettings) -> ChainInfo:
        def terms(asset: str) -> WithdrawalTerms | None:
            limits = chain.withdrawals.get(asset)
            return WithdrawalTerms.of(limits) if limits is not None else None

        usdt = ChainAsset(
            "USDT", chain.usdt, chain.usdt_decimals, f"{chain.min_deposit:f}", terms("USDT")
        )
        native = ChainAsset(
            chain.native_asset,
            NATIVE,
            NATIVE_DECIMALS,
            f"{chain.min_native_deposit:f}",
            terms(chain.native_asset),
        )
        opened = bool(chain.vault)
        paying = self.settings.pays(chain)
        assets = [usdt, native]
        return ChainInfo(
            name, chain.chain_id, chain.confirmations, chain.vault, opened, assets, paying
        )

    def address(self, user_id: int, chain: str, asset: str) -> str:
        """The user's deposit address on ``chain``: the same for every token it takes."""
        found = self.settings.evm.get(chain)
        if found is None:
            raise UnknownChain(f"no chain {chain!r}; chains: {', '.join(self.settings.evm)}")
        taken = ("USDT", found.native_asset)
        if asset not in taken:
            raise UnknownDepositAsset(f"{asset!r} is not taken; assets: {', '.join(taken)}")
        if not found.vault:
            raise DepositsUnavailable(f"deposits on {chain} are not open")
        code = forwarder_creation_code(self.settings.forwarder_artifact)
        return deposit_address(found.vault, user_id, code)

    async def deposits(self, session: AsyncSession, user_id: int) -> list[DepositEntry]:
        """The user's deposits, newest first, with their confirmations so far."""
        rows = (
            await session.exec(
                select(ChainDeposit)
                .where(col(ChainDeposit.user_id) == user_id)
                .order_by(col(ChainDeposit.id).desc())
                .limit(DEPOSITS_PAGE)
            )
        ).all()
        cursors = {row.chain: row.block_number for row in await session.exec(select(ChainCursor))}
        entries = []
        for row in rows:
            chain = self.settings.evm.get(row.chain)
            required = chain.confirmations if chain else 0
            seen = max(0, cursors.get(row.chain, 0) - row.block_number + 1)
            entries.append(
                DepositEntry(
                    chain=row.chain,
                    tx_hash=row.tx_hash,
                    log_index=row.log_index,
                    asset=row.asset,
                    amount=ASSETS[row.asset].format(row.amount),
                    block_number=row.block_number,
                    confirmations=seen,
                    required=required,
                    status=row.status,
                    created_at=row.created_at,
                    credited_at=row.credited_at,
                )
            )
        return entries


async def remember_address(session: AsyncSession, user_id: int, chain: str, address: str) -> None:
    """Note that the user was shown this deposit address: the operator sweeps it from now on
    (once per user and chain; showing it again changes nothing)."""
    table = DepositAddress.__table__  # type: ignore[attr-defined]
    insert = insert_for(session)(table).values(
        chain=chain, user_id=user_id, address=address, created_at=utcnow()
    )
    await session.exec(insert.on_conflict_do_nothing(index_elements=["chain", "user_id"]))
