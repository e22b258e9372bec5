"""One chain's withdrawals, paid: the operator's side, run where the books run (the returns
go through the trading writers, like deposits).

Each pass, in this order:

1. ``requested`` rows left by a crash or a timeout are settled by the ledger: their debit is
   there (on to approval or the queue) or it is not (``refused``: nothing moved);
2. withdrawals that ended unpaid (cancelled, rejected, failed) get their amount back, once
   (the return's transfer id follows from the withdrawal);
3. sent ones are followed: a receipt with the chain's confirmations ends them (paid: the amount
   leaves ``sys:withdrawing`` for the chain's custody, the fee for ``sys:withdrawal_fees``;
   reverted: failed, returned next pass); a transaction with no receipt after ``stuck_seconds``
   is replaced with higher fees; one the node forgot is broadcast again;
4. queued ones are sent, oldest first, after a dry run (``eth_call``) that turns a refusal the
   vault would give into ``failed`` with its reason, without spending gas;
5. deposit addresses are swept into the vault (``sweeps.py``).

Whether a sent withdrawal was paid is finally the vault's word: when its receipts do not show
(a provider a block behind) or its transaction reverted, ``nonces(wallet)`` past the row's nonce
means one of its transactions paid it (only this row holds that nonce of that wallet), and it
is confirmed, never returned.  Once sent, a withdrawal is no longer the user's to cancel.

Withdrawals and sweeps share this one task per chain, so the operator's nonces are allocated
by one hand.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import structlog
from eth_account import Account
from sqlalchemy import update
from sqlmodel import col, select

from backend.chains.deposits import custody_source
from backend.chains.rpc import EvmRpc, RpcError
from backend.chains.sweeps import Sweeper
from backend.chains.txmanager import FeeTooHigh, TxManager
from backend.chains.vault import (
    WITHDRAW_GAS,
    decode_uint,
    nonces_call,
    withdraw_call,
)
from backend.chains.withdrawal_models import (
    RETURNED,
    ChainTx,
    ChainWithdrawal,
    TxStatus,
    WithdrawalStatus,
)
from backend.chains.withdrawals import announce, debit_id
from backend.clock import utcnow
from backend.config import ChainsSettings, EvmChainSettings
from backend.db.engine import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.hub.hub import Hub
from backend.ledger.assets import ASSETS
from backend.ledger.domain import TransferRequest, system_account
from backend.ledger.service import Ledger, derived_id
from backend.notify.service import enqueue
from backend.trading.commands import WITHDRAWING, Deposit, WriterUnavailable
from backend.trading.service import Trading

log = structlog.get_logger(__name__)

FEES = "withdrawal_fees"
# A ``requested`` row this old has had its debit answered or dropped (the books time a request
# out well before): what the ledger says about it is final.
REQUESTED_GRACE = timedelta(seconds=60)
# How long a ``refused`` request is watched for a debit that committed late.
LATE_DEBIT_WINDOW = timedelta(days=1)
# A queued withdrawal whose authorisation ends sooner than this is not sent: it could expire in
# the mempool.
DEADLINE_MARGIN_SECONDS = 120


class Payouts:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        trading: Trading,
        hub: Hub,
        chain: str,
        settings: EvmChainSettings,
        chains: ChainsSettings,
        rpc: EvmRpc,
        key: str | None,
        *,
        requested_grace: timedelta = REQUESTED_GRACE,
    ) -> None:
        """``key``: the operator's; None sends nothing, and only settles cut-off requests and
        returns what ended unpaid (withdrawals taken before the key went away)."""
        self.db = db
        self.ledger = ledger
        self.trading = trading
        self.hub = hub
        self.chain = chain
        self.settings = settings
        self.rpc = rpc
        self._tx = TxManager(chain, settings.chain_id, rpc, key, chains) if key else None
        self.requested_grace = requested_grace
        self.sweeper = (
            Sweeper(db, chain, settings, self._tx, chains.sweep_seconds) if self._tx else None
        )

    @property
    def tx(self) -> TxManager:
        assert self._tx is not None, "no operator key: nothing is sent"
        return self._tx

    async def run(self, poll_seconds: float) -> None:
        while True:
            try:
                await self.step()
            except (RpcError, WriterUnavailable) as exc:
                log.warning("payouts_pass_failed", chain=self.chain, error=str(exc))
            except Exception:
                # A database hiccup must not end the paying: each step starts over from rows.
                log.exception("payouts_pass_crashed", chain=self.chain)
            await asyncio.sleep(poll_seconds)

    async def step(self) -> None:
        if not self.trading.running:
            return  # the books run in another process: its payouts pay
        await self._settle_requested()
        await self._return_ended()
        if self._tx is None:
            return
        await self._follow_sent()
        await self._send_queued()
        assert self.sweeper is not None
        await self.sweeper.step()

    async def _rows(self, *statuses: WithdrawalStatus) -> list[ChainWithdrawal]:
        async with self.db.reads() as session:
            rows = await session.exec(
                select(ChainWithdrawal)
                .where(
                    col(ChainWithdrawal.chain) == self.chain,
                    col(ChainWithdrawal.status).in_([s.value for s in statuses]),
                )
                .order_by(col(ChainWithdrawal.id))
            )
            return list(rows.all())

    # 1. Requests a crash left behind ---------------------------------------------------------

    async def _settle_requested(self) -> None:
        old = utcnow() - self.requested_grace
        for row in await self._rows(WithdrawalStatus.REQUESTED):
            if row.created_at > old:
                continue
            assert row.id is not None
            async with unit_of_work(self.db) as uow:
                debited = bool(await self.ledger.stored(uow, [debit_id(row.id)]))
                stored = await uow.session.get(ChainWithdrawal, row.id)
                assert stored is not None
                if debited:
                    limits = self.settings.withdrawals[stored.asset]
                    above = stored.amount > ASSETS[stored.asset].to_units(limits.approval_above)
                    status = WithdrawalStatus.PENDING_APPROVAL if above else WithdrawalStatus.QUEUED
                    stored.status = status.value
                else:
                    stored.status, stored.nonce_slot = WithdrawalStatus.REFUSED.value, None
                stored.updated_at = utcnow()
                uow.session.add(stored)
            log.info("withdrawal_request_settled", id=row.id, status=stored.status)
            await announce(self.hub, stored)

    # 2. Returns ------------------------------------------------------------------------------

    async def _late_debits(self) -> list[ChainWithdrawal]:
        """``refused`` requests whose debit committed after all (a writer batch that had taken
        it before its sender gave up, or clocks apart between hosts): theirs to return."""
        since = utcnow() - LATE_DEBIT_WINDOW
        refused = [
            row
            for row in await self._rows(WithdrawalStatus.REFUSED)
            if row.refunded_at is None and row.created_at > since and row.id is not None
        ]
        if not refused:
            return []
        async with unit_of_work(self.db) as uow:
            debited = await self.ledger.stored(uow, [debit_id(row.id or 0) for row in refused])
        return [row for row in refused if debit_id(row.id or 0) in debited]

    async def _return_ended(self) -> None:
        for row in await self._rows(*RETURNED) + await self._late_debits():
            if row.refunded_at is not None or row.user_id is None:
                continue
            assert row.id is not None
            transfer_id = derived_id("wdreturn", str(row.id))
            async with unit_of_work(self.db) as uow:
                done = bool(await self.ledger.stored(uow, [transfer_id]))
            if not done:
                writer = next(iter(self.trading.writers.values()))
                # No timeout: a return given up on could still commit (see deposits.py).
                await writer.submit(
                    Deposit(row.user_id, row.asset, row.amount, WITHDRAWING, transfer_id)
                )
            async with unit_of_work(self.db) as uow:
                stored = await uow.session.get(ChainWithdrawal, row.id)
                assert stored is not None
                stored.refunded_at = stored.updated_at = utcnow()
                uow.session.add(stored)
                reason = stored.status
                if stored.status == WithdrawalStatus.REFUSED.value:
                    reason = WithdrawalStatus.FAILED.value
                if stored.error == "authorization_expired":
                    reason = "expired"
                await enqueue(
                    uow,
                    row.user_id,
                    "withdrawal_returned",
                    {
                        "chain": row.chain,
                        "asset": row.asset,
                        "amount": ASSETS[row.asset].format(row.amount),
                        "reason": reason,
                    },
                    dedupe_key=f"withdrawal:{row.id}:returned",
                )
            log.info("withdrawal_returned", id=row.id, status=row.status)
            await announce(self.hub, stored)

    # 3. Sent ---------------------------------------------------------------------------------

    async def _follow_sent(self) -> None:
        rows = await self._rows(WithdrawalStatus.SENT)
        if not rows:
            return
        head = int(await self.tx.rpc.call("eth_blockNumber", []), 16)
        for row in rows:
            await self._follow(row, head)

    async def _attempts(self, withdrawal_id: int) -> list[ChainTx]:
        async with self.db.reads() as session:
            rows = await session.exec(
                select(ChainTx)
                .where(col(ChainTx.withdrawal_id) == withdrawal_id)
                .order_by(col(ChainTx.id))
            )
            return list(rows.all())

    async def _follow(self, row: ChainWithdrawal, head: int) -> None:
        assert row.id is not None
        attempts = await self._attempts(row.id)
        if not attempts:  # cannot happen: the row and its first transaction commit together
            log.error("withdrawal_without_transaction", id=row.id)
            return
        for attempt in attempts:
            receipt = await self.tx.receipt(attempt.tx_hash)
            if receipt is None:
                continue
            if head - receipt.block_number + 1 < self.settings.confirmations:
                if row.tx_hash != receipt.tx_hash or row.block_number != receipt.block_number:
                    await self._update(row.id, tx_hash=receipt.tx_hash, block=receipt.block_number)
                return
            await self._finish(row, attempt, receipt.ok, receipt.block_number)
            return
        last = attempts[-1]
        if await self.tx.mined_nonce() > last.nonce:
            if await self._used(row):
                # One of its transactions paid it; the node just does not show the receipt.
                log.error("withdrawal_paid_without_receipt", id=row.id)
                await self._paid_unseen(row)
                return
            # The operator's nonce went to a transaction that is none of this withdrawal's (the
            # key used elsewhere), and the vault has not paid it: send it again.
            log.error("withdrawal_nonce_taken", id=row.id, nonce=last.nonce)
            await self._update(row.id, status=WithdrawalStatus.QUEUED)
            return
        age = time.time() - last.created_at.timestamp()
        if age >= self.tx.stuck_seconds:
            await self._replace(row, last)
        elif not await self.tx.known(last.tx_hash):
            await self.tx.broadcast(last.raw)

    async def _replace(self, row: ChainWithdrawal, last: ChainTx) -> None:
        assert row.id is not None
        try:
            signed = await self.tx.replacement(last, self.settings.vault)
        except FeeTooHigh as exc:
            log.warning("withdrawal_replacement_waits", id=row.id, reason=str(exc))
            return
        async with unit_of_work(self.db) as uow:
            uow.session.add(self.tx.record(signed, withdrawal_id=row.id))
            stored = await uow.session.get(ChainWithdrawal, row.id)
            assert stored is not None
            stored.tx_hash, stored.updated_at = signed.tx_hash, utcnow()
            uow.session.add(stored)
        log.info(
            "withdrawal_replaced",
            id=row.id,
            nonce=signed.nonce,
            old=last.tx_hash,
            new=signed.tx_hash,
            max_fee=signed.fees.max_fee,
        )
        await self.tx.broadcast(signed.raw)

    async def _used(self, row: ChainWithdrawal) -> bool:
        """Whether the vault has counted this authorisation's nonce: then it paid it (only
        this row holds that nonce of that wallet), whatever receipts say or do not say."""
        call = {"to": self.settings.vault, "data": "0x" + nonces_call(row.address).hex()}
        found = await self.tx.rpc.call("eth_call", [call, "latest"])
        return decode_uint(str(found)) > row.vault_nonce

    async def _finish(self, row: ChainWithdrawal, mined: ChainTx, ok: bool, block: int) -> None:
        assert row.id is not None
        if not ok and await self._used(row):
            # This transaction reverted because another one of the row's paid it first (a
            # re-send after a lost receipt): paid, never returned.
            log.error("withdrawal_paid_by_another_transaction", id=row.id, reverted=mined.tx_hash)
            await self._paid_unseen(row)
            return
        async with unit_of_work(self.db) as uow:
            stored = await uow.session.get(ChainWithdrawal, row.id)
            assert stored is not None
            if stored.status != WithdrawalStatus.SENT.value:
                return
            for attempt in await self._attempts(row.id):
                state = TxStatus.MINED if attempt.id == mined.id else TxStatus.REPLACED
                attempt.status = state.value
                uow.session.add(attempt)
            stored.tx_hash, stored.block_number = mined.tx_hash, block
            stored.updated_at = utcnow()
            if ok:
                stored.status, stored.confirmed_at = WithdrawalStatus.CONFIRMED.value, utcnow()
                await self._settle_custody(uow, stored)
            else:
                stored.status, stored.error = WithdrawalStatus.FAILED.value, "reverted"
                stored.nonce_slot = None
            uow.session.add(stored)
        log.info("withdrawal_finished", id=row.id, status=stored.status, tx=mined.tx_hash)
        await announce(self.hub, stored)

    async def _paid_unseen(self, row: ChainWithdrawal) -> None:
        """Confirmed on the vault's word (its nonce for the wallet moved past this one)."""
        assert row.id is not None
        async with unit_of_work(self.db) as uow:
            stored = await uow.session.get(ChainWithdrawal, row.id)
            assert stored is not None
            if stored.status not in (WithdrawalStatus.QUEUED.value, WithdrawalStatus.SENT.value):
                return
            stored.status, stored.confirmed_at = WithdrawalStatus.CONFIRMED.value, utcnow()
            stored.updated_at = utcnow()
            uow.session.add(stored)
            await self._settle_custody(uow, stored)
        await announce(self.hub, stored)

    async def _settle_custody(self, uow: UnitOfWork, row: ChainWithdrawal) -> None:
        """Paid: the amount leaves ``sys:withdrawing`` for the chain's custody (the vault holds
        that much less), the fee for our fees; the user is told."""
        assert row.id is not None
        asset = row.asset
        paid = row.amount - row.fee
        moves = [
            TransferRequest(
                derived_id("wdpaid", str(row.id)),
                "withdrawal_paid",
                paid,
                system_account(WITHDRAWING, asset),
                system_account(custody_source(self.chain), asset),
                asset,
            )
        ]
        if row.fee:
            moves.append(
                TransferRequest(
                    derived_id("wdfee", str(row.id)),
                    "withdrawal_fee",
                    row.fee,
                    system_account(WITHDRAWING, asset),
                    system_account(FEES, asset),
                    asset,
                )
            )
        await self.ledger.submit(uow, moves)
        if row.user_id is not None:
            await enqueue(
                uow,
                row.user_id,
                "withdrawal_sent",
                {
                    "chain": row.chain,
                    "asset": asset,
                    "amount": ASSETS[asset].format(paid),
                    "address": row.address,
                    "tx_hash": row.tx_hash,
                },
                dedupe_key=f"withdrawal:{row.id}:sent",
            )

    # 4. Queued -------------------------------------------------------------------------------

    def _call(self, row: ChainWithdrawal) -> bytes:
        return withdraw_call(
            row.address,
            row.token,
            int(row.raw_amount),
            row.vault_nonce,
            row.deadline,
            row.signature,
        )

    async def _send_queued(self) -> None:
        for row in await self._rows(WithdrawalStatus.QUEUED):
            assert row.id is not None
            if row.sent_at is not None and await self._used(row):
                # Sent before and paid (see ``_follow``): never failed nor returned.
                log.error("withdrawal_paid_without_receipt", id=row.id)
                await self._paid_unseen(row)
                continue
            if row.deadline < time.time() + DEADLINE_MARGIN_SECONDS:
                await self._fail(row, "authorization_expired")
                continue
            data = self._call(row)
            refusal = await self.tx.simulate(self.settings.vault, data)
            if refusal == "authorization_used":
                # The vault counted this wallet's nonce: only this row holds it, so one of its
                # transactions paid it (a receipt the node lost).  Returning it would pay twice.
                log.error("withdrawal_paid_without_receipt", id=row.id)
                await self._paid_unseen(row)
                continue
            if refusal is not None:
                log.warning("withdrawal_refused_by_vault", id=row.id, code=refusal)
                await self._fail(row, refusal)
                continue
            fees = await self.tx.fees()
            async with unit_of_work(self.db) as uow:
                nonce = await self.tx.next_nonce(uow.session)
                try:
                    signed = self.tx.sign(nonce, self.settings.vault, data, WITHDRAW_GAS, fees)
                except FeeTooHigh as exc:
                    log.warning("withdrawal_waits_for_fees", id=row.id, reason=str(exc))
                    return
                # Claimed only if still queued: a cancel that commits first wins, and this
                # transaction is then never stored nor sent.
                claimed = await uow.session.exec(
                    update(ChainWithdrawal)
                    .where(
                        col(ChainWithdrawal.id) == row.id,
                        col(ChainWithdrawal.status) == WithdrawalStatus.QUEUED.value,
                    )
                    .values(
                        status=WithdrawalStatus.SENT.value,
                        tx_hash=signed.tx_hash,
                        sent_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
                if claimed.rowcount != 1:
                    continue  # cancelled meanwhile
                uow.session.add(self.tx.record(signed, withdrawal_id=row.id))
                stored = await uow.session.get(ChainWithdrawal, row.id, populate_existing=True)
                assert stored is not None
            log.info("withdrawal_sent", id=row.id, nonce=nonce, tx=signed.tx_hash)
            try:
                await self.tx.broadcast(signed.raw)
            except RpcError as exc:
                # Stored: the next pass finds the node without it and broadcasts it again.
                log.warning("withdrawal_broadcast_failed", id=row.id, error=str(exc))
            await announce(self.hub, stored)

    async def _fail(self, row: ChainWithdrawal, code: str) -> None:
        assert row.id is not None
        stored = await self._update(
            row.id, status=WithdrawalStatus.FAILED, error=code, only=WithdrawalStatus.QUEUED
        )
        if stored is not None:
            await announce(self.hub, stored)

    async def _update(
        self,
        withdrawal_id: int,
        *,
        status: WithdrawalStatus | None = None,
        error: str | None = None,
        tx_hash: str | None = None,
        block: int | None = None,
        only: WithdrawalStatus | None = None,
    ) -> ChainWithdrawal | None:
        async with unit_of_work(self.db) as uow:
            stored = await uow.session.get(ChainWithdrawal, withdrawal_id)
            assert stored is not None
            if only is not None and stored.status != only.value:
                return None
            if status is not None:
                stored.status = status.value
                if status is WithdrawalStatus.FAILED:
                    stored.nonce_slot = None
            if error is not None:
                stored.error = error
            if tx_hash is not None:
                stored.tx_hash, stored.block_number = tx_hash, block
            stored.updated_at = utcnow()
            uow.session.add(stored)
            return stored


async def pay_chains(
    db: Database, ledger: Ledger, trading: Trading, hub: Hub, chains: ChainsSettings
) -> None:
    """Payouts per configured chain (an RPC URL and a vault), for as long as the task lives.
    Without a usable operator key nothing is sent (and the API takes no withdrawals), but
    cut-off requests are settled and what ended unpaid is still returned."""
    key: str | None = None
    try:
        key = chains.operator_secret() or None
        if key:
            Account.from_key(key)
    except (OSError, ValueError) as exc:
        # A bad key must not take the books down with it: nothing is sent, loudly.
        log.error("withdrawals_not_sent", reason=f"unusable operator key: {exc.__class__.__name__}")
        key = None
    if key is None:
        log.warning("withdrawals_not_sent", reason="no usable CHAINS_OPERATOR_KEY or key file")
    payouts = [
        Payouts(db, ledger, trading, hub, name, chain, chains, EvmRpc(chain.rpc_url), key)
        for name, chain in chains.evm.items()
        if chain.rpc_url and chain.vault
    ]
    try:
        async with asyncio.TaskGroup() as group:
            for payout in payouts:
                group.create_task(payout.run(chains.poll_seconds), name=f"payouts-{payout.chain}")
    finally:
        for payout in payouts:
            await payout.rpc.close()
