"""Deposit addresses swept into the vault: the operator's side of "a user just sends funds".

The addresses users were shown (``deposit_addresses``) are read a page at a time, their
balances in parallel; one holding at least the chain's minimum deposit (USDT or native coin) is
swept with ``Vault.sweep`` (which deploys the forwarder the first time), and the deposit watcher
credits the ``Deposited`` events that follow.  Sweeps are the operator's transactions: sent,
followed and replaced through the chain's ``TxManager``, by the payouts task that also pays
withdrawals, so one hand allocates the operator's nonces.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from sqlmodel import col, select

from backend.chains.deposit_models import DepositAddress
from backend.chains.evm import NATIVE_DECIMALS, chain_user_id
from backend.chains.rpc import RpcError
from backend.chains.txmanager import FeeTooHigh, TxManager
from backend.chains.vault import sweep_call
from backend.chains.withdrawal_models import ChainTx, TxStatus
from backend.clock import utcnow
from backend.config import EvmChainSettings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.ledger.assets import ASSETS

log = structlog.get_logger(__name__)

# Deposit addresses read per pass (their balances in parallel): a pass stays short.
SWEEP_PAGE = 100


class Sweeper:
    def __init__(
        self, db: Database, chain: str, settings: EvmChainSettings, tx: TxManager, every: float
    ) -> None:
        self.db = db
        self.chain = chain
        self.settings = settings
        self.tx = tx
        self.every = every
        self._round_at = 0.0
        self._after = 0
        """The user id the current round has reached (0: no round under way)."""
        usdt = ASSETS["USDT"]
        native = ASSETS[settings.native_asset]
        # The least worth sweeping, in each token's own units: the minimum deposit.
        self._least_usdt = usdt.to_units(settings.min_deposit) * 10 ** (
            settings.usdt_decimals - usdt.scale
        )
        self._least_native = native.to_units(settings.min_native_deposit) * 10 ** (
            NATIVE_DECIMALS - native.scale
        )

    async def step(self) -> None:
        """Follow the sweeps sent; read the next page when a round is under way or due."""
        await self._follow()
        if self._after > 0 or time.monotonic() - self._round_at >= self.every:
            await self._sweep_page()

    async def _sweep_page(self) -> None:
        """One page of the current round: ``SWEEP_PAGE`` addresses, their balances read at
        once; a round ends when the last page is read, and the next starts ``every`` seconds
        later.  Paged so that a pass stays short however many addresses there are: the same
        task sends and follows withdrawals."""
        async with self.db.reads() as session:
            page = list(
                (
                    await session.exec(
                        select(DepositAddress)
                        .where(
                            col(DepositAddress.chain) == self.chain,
                            col(DepositAddress.user_id) > self._after,
                        )
                        .order_by(col(DepositAddress.user_id))
                        .limit(SWEEP_PAGE)
                    )
                ).all()
            )
            pending = set(
                (
                    await session.exec(
                        select(ChainTx.sweep_user_id).where(
                            col(ChainTx.chain) == self.chain,
                            col(ChainTx.sweep_user_id).is_not(None),
                            col(ChainTx.status) == TxStatus.PENDING.value,
                        )
                    )
                ).all()
            )
        if len(page) < SWEEP_PAGE:
            self._after, self._round_at = 0, time.monotonic()
        else:
            self._after = page[-1].user_id
        waiting = [address for address in page if address.user_id not in pending]
        usdt = self.settings.usdt
        rpc = self.tx.rpc
        tokens = await asyncio.gather(
            *(rpc.token_balance(usdt, a.address) for a in waiting if usdt)
        )
        coins = await asyncio.gather(*(rpc.native_balance(a.address) for a in waiting))
        for index, address in enumerate(waiting):
            sweep = [usdt] if usdt and tokens[index] >= self._least_usdt else []
            if sweep or coins[index] >= self._least_native:
                await self._send(address, sweep)

    async def _send(self, address: DepositAddress, tokens: list[str]) -> None:
        data = sweep_call(chain_user_id(address.user_id), tokens)
        gas = await self.tx.estimate(self.settings.vault, data)
        fees = await self.tx.fees()
        async with unit_of_work(self.db) as uow:
            nonce = await self.tx.next_nonce(uow.session)
            try:
                signed = self.tx.sign(nonce, self.settings.vault, data, gas, fees)
            except FeeTooHigh as exc:
                log.warning("sweep_waits_for_fees", user=address.user_id, reason=str(exc))
                return
            uow.session.add(self.tx.record(signed, sweep_user_id=address.user_id))
            stored = await uow.session.get(DepositAddress, (address.chain, address.user_id))
            if stored is not None:
                stored.swept_at = utcnow()
                uow.session.add(stored)
        log.info("deposit_address_swept", chain=self.chain, user=address.user_id, tx=signed.tx_hash)
        try:
            await self.tx.broadcast(signed.raw)
        except RpcError as exc:
            log.warning("sweep_broadcast_failed", user=address.user_id, error=str(exc))

    async def _follow(self) -> None:
        """Pending sweeps: mined (one of a nonce's transactions has a receipt), replaced when
        stuck, broadcast again when the node forgot them.  Reverted or dropped ones just end:
        the next look at the address sweeps what is still there."""
        async with self.db.reads() as session:
            sent = list(
                (
                    await session.exec(
                        select(ChainTx)
                        .where(
                            col(ChainTx.chain) == self.chain,
                            col(ChainTx.sweep_user_id).is_not(None),
                            col(ChainTx.status) == TxStatus.PENDING.value,
                        )
                        .order_by(col(ChainTx.id))
                    )
                ).all()
            )
        by_nonce: dict[int, list[ChainTx]] = {}
        for tx in sent:
            by_nonce.setdefault(tx.nonce, []).append(tx)
        for attempts in by_nonce.values():
            mined = None
            for attempt in attempts:
                if await self.tx.receipt(attempt.tx_hash) is not None:
                    mined = attempt
            last = attempts[-1]
            if mined is None and await self.tx.mined_nonce() <= last.nonce:
                if time.time() - last.created_at.timestamp() >= self.tx.stuck_seconds:
                    await self._replace(last)
                elif not await self.tx.known(last.tx_hash):
                    await self.tx.broadcast(last.raw)
                continue
            async with unit_of_work(self.db) as uow:
                for attempt in attempts:
                    stored = await uow.session.get(ChainTx, attempt.id)
                    assert stored is not None
                    state = TxStatus.MINED if stored.id == getattr(mined, "id", None) else None
                    stored.status = (state or TxStatus.REPLACED).value
                    uow.session.add(stored)

    async def _replace(self, last: ChainTx) -> None:
        try:
            signed = await self.tx.replacement(last, self.settings.vault)
        except FeeTooHigh as exc:
            log.warning("sweep_replacement_waits", tx=last.tx_hash, reason=str(exc))
            return
        async with unit_of_work(self.db) as uow:
            uow.session.add(self.tx.record(signed, sweep_user_id=last.sweep_user_id))
        log.info("sweep_replaced", old=last.tx_hash, new=signed.tx_hash)
        await self.tx.broadcast(signed.raw)
