"""The deposit watcher of one EVM chain: reads the vault's ``Deposited`` logs and credits them
after N confirmations, through the trading writers (as the faucet does), from the chain's
custody account ``sys:custody_<chain>:<asset>``.  The vault's USDT is credited as USDT, its
native coin (token ``address(0)``) as the chain's ``native_asset`` (ETH, BNB); other tokens are
only logged.

The rules that keep it exact:

* Idempotent: a log is named by (chain, tx hash, log index), unique in ``chain_deposits``; its
  ledger transfer id follows from that name, and is looked up before crediting, so a crash
  between the credit and marking the row credited never credits twice.
* Reorg-safe: the cursor keeps the last scanned block's hash.  When the node's block at that
  height has another hash, the watcher steps back ``confirmations`` blocks, drops the
  uncredited deposits above, and scans again from there; a log still on the chain comes back
  as ``seen``.  A deposit is credited only with N confirmations *and* its block hash re-read
  from the node at that moment matching the one it was seen in; a mismatch (a reorg deeper
  than the step back, or one that happened since the scan) drops it and re-scans from just
  below its block.  A deposit in a block that left the chain is therefore never credited.
  Credited deposits are final: a reorg deeper than N blocks is beyond what N confirmations
  promise; it is not undone.
* Resumable: the cursor (chain, block number, hash) is stored after each scanned range, so a
  restarted watcher goes on from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chains.deposit_models import ChainCursor, ChainDeposit, DepositStatus
from backend.chains.evm import (
    NATIVE,
    NATIVE_DECIMALS,
    DepositLog,
    decode_deposit,
    internal_user_id,
    to_ledger_units,
)
from backend.chains.rpc import Block, EvmRpc, RpcError
from backend.clock import utcnow
from backend.config import ChainsSettings, EvmChainSettings
from backend.db.engine import Database
from backend.db.uow import AfterCommit, unit_of_work
from backend.hub.hub import Hub
from backend.ledger.assets import ASSETS, Asset
from backend.ledger.service import Ledger, derived_id
from backend.notify.service import Notice, enqueue_many
from backend.trading.commands import Deposit, WriterUnavailable
from backend.trading.service import Trading
from backend.users.models import User

log = structlog.get_logger(__name__)

# The most times one pass steps back looking for a block the node still has; beyond that the
# reorg is deeper than anything the confirmations allow for, and a person should look.
MAX_REWINDS = 16


def custody_source(chain: str) -> str:
    """The system account name deposits on ``chain`` come from (``sys:custody_bnb:USDT``)."""
    return f"custody_{chain}"


def deposit_transfer_id(chain: str, tx_hash: str, log_index: int) -> str:
    return derived_id("chaindep", f"{chain}:{tx_hash}:{log_index}")


class DepositWatcher:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        trading: Trading,
        chain: str,
        settings: EvmChainSettings,
        rpc: EvmRpc,
        *,
        max_blocks: int = 2_000,
        hub: Hub | None = None,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.trading = trading
        self.chain = chain
        self.settings = settings
        self.rpc = rpc
        self.max_blocks = max_blocks
        self.hub = hub
        usdt, native = ASSETS["USDT"], ASSETS[settings.native_asset]
        # What each token address is credited as: (asset, decimals on chain, minimum in units).
        self._tokens: dict[str, tuple[Asset, int, int]] = {
            NATIVE: (native, NATIVE_DECIMALS, native.to_units(settings.min_native_deposit)),
        }
        if settings.usdt:
            self._tokens[settings.usdt.lower()] = (
                usdt,
                settings.usdt_decimals,
                usdt.to_units(settings.min_deposit),
            )

    async def run(self, poll_seconds: float) -> None:
        """Scan and credit for as long as the task lives (its owner cancels it)."""
        while True:
            try:
                await self.scan()
            except (RpcError, WriterUnavailable) as exc:
                log.warning("chain_scan_failed", chain=self.chain, error=str(exc))
            except Exception:
                # A database hiccup must not end the watching: the next pass starts over
                # from the stored cursor, and nothing half-done is credited twice.
                log.exception("chain_scan_crashed", chain=self.chain)
            await asyncio.sleep(poll_seconds)

    async def scan(self) -> int:
        """One pass: follow the chain to its head, then credit what is confirmed.  Returns
        how many deposits were credited."""
        head = await self.rpc.head()
        cursor = await self._resume()
        while cursor.number < head:
            end = min(head, cursor.number + self.max_blocks)
            tip = await self._block(end)
            logs = await self.rpc.deposit_logs(self.settings.vault, cursor.number + 1, end)
            if (await self._block(end)).hash != tip.hash:
                break  # the chain moved under the read: the next pass reads it again
            await self._record([decode_deposit(item) for item in logs], tip)
            cursor = tip
        return await self._credit_confirmed(head)

    async def _block(self, number: int) -> Block:
        block = await self.rpc.block(number)
        if block is None:
            raise RpcError(f"{self.chain}: no block {number}")
        return block

    async def _resume(self) -> Block:
        """The cursor, stepped back past any block that left the chain."""
        async with self.db.reads() as session:
            row = await session.get(ChainCursor, self.chain)
        if row is None:
            start = self.settings.start_block - 1
            return Block(start, "") if start < 0 else await self._block(start)
        cursor = Block(row.block_number, row.block_hash)
        for _ in range(MAX_REWINDS):
            if cursor.number < 0:
                break
            now = await self.rpc.block(cursor.number)
            if now is not None and now.hash == cursor.hash:
                break
            back = max(cursor.number - self.settings.confirmations, self.settings.start_block - 1)
            log.warning("chain_reorg", chain=self.chain, block=cursor.number, rewind_to=back)
            cursor = Block(back, "") if back < 0 else await self._block(back)
            await self._rewind(cursor)
        else:
            raise RpcError(f"{self.chain}: reorg deeper than {MAX_REWINDS} rewinds")
        return cursor

    async def _rewind(self, cursor: Block) -> None:
        """Move the cursor back; deposits above it not yet credited are dropped (a re-scan
        brings back those still on the chain)."""
        async with unit_of_work(self.db) as uow:
            rows = await uow.session.exec(
                select(ChainDeposit).where(
                    col(ChainDeposit.chain) == self.chain,
                    col(ChainDeposit.block_number) > cursor.number,
                    col(ChainDeposit.status) == DepositStatus.SEEN.value,
                )
            )
            for row in rows:
                row.status = DepositStatus.DROPPED.value
                uow.session.add(row)
            await self._save_cursor(uow.session, cursor)

    async def _save_cursor(self, session: AsyncSession, cursor: Block) -> None:
        row = await session.get(ChainCursor, self.chain)
        if row is None:
            row = ChainCursor(chain=self.chain, block_number=cursor.number, block_hash=cursor.hash)
        row.block_number, row.block_hash, row.updated_at = cursor.number, cursor.hash, utcnow()
        session.add(row)

    async def _record(self, logs: list[DepositLog], tip: Block) -> None:
        """Store the range's deposits (new, or back on the chain after a drop) and move the
        cursor to its last block, in one transaction (two reads for the whole range: the rows
        already recorded, the users named)."""
        wanted = []
        for item in logs:
            taken = self._tokens.get(item.token.lower())
            if taken is None:
                log.info("chain_deposit_ignored", chain=self.chain, token=item.token)
            else:
                wanted.append((item, taken))
        async with unit_of_work(self.db) as uow:
            session = uow.session
            existing: dict[tuple[str, int], ChainDeposit] = {}
            hashes = sorted({item.tx_hash for item, _ in wanted})
            for chunk in _chunks(hashes):
                found = await session.exec(
                    select(ChainDeposit).where(
                        col(ChainDeposit.chain) == self.chain, col(ChainDeposit.tx_hash).in_(chunk)
                    )
                )
                existing.update({(row.tx_hash, row.log_index): row for row in found})
            named = sorted(
                {uid for item, _ in wanted if (uid := internal_user_id(item.user_id)) is not None}
            )
            users: set[int | None] = set()
            for chunk in _chunks(named):
                users.update(
                    await session.exec(select(col(User.id)).where(col(User.id).in_(chunk)))
                )
            recorded: list[ChainDeposit] = []
            for item, (asset, decimals, minimum) in wanted:
                row = existing.get((item.tx_hash, item.log_index))
                if row is not None and row.status != DepositStatus.DROPPED.value:
                    if row.status == DepositStatus.SEEN.value:
                        row.block_number, row.block_hash = item.block_number, item.block_hash
                        session.add(row)
                    continue
                user_id = internal_user_id(item.user_id)
                if user_id not in users:
                    user_id = None
                amount = to_ledger_units(item.amount, decimals, asset.scale)
                status = DepositStatus.SEEN
                if user_id is None:
                    status = DepositStatus.UNKNOWN_USER
                elif amount < minimum:
                    status = DepositStatus.BELOW_MINIMUM
                row = row or ChainDeposit(
                    chain=self.chain,
                    tx_hash=item.tx_hash,
                    log_index=item.log_index,
                    asset=asset.code,
                    amount=0,
                    raw_amount="0",
                    sender=item.sender,
                    block_number=0,
                    block_hash="",
                    status="",
                )
                row.user_id, row.amount, row.raw_amount = user_id, amount, str(item.amount)
                row.block_number, row.block_hash = item.block_number, item.block_hash
                row.status = status.value
                session.add(row)
                recorded.append(row)
            await self._save_cursor(session, tip)
            uow.after_commit(self._publisher(recorded))

    async def _credit_confirmed(self, head: int) -> int:
        """Credit the deposits with N confirmations whose block is still the one they were
        seen in; the others wait, or are dropped and their block re-scanned.  All of a pass's
        deposits go to the writer at once (one group commit, not one per deposit), and are
        marked credited in one transaction."""
        if not self.trading.running:
            return 0  # the books run in another process: its watcher credits
        deepest = head - self.settings.confirmations + 1
        async with self.db.reads() as session:
            rows = (
                await session.exec(
                    select(ChainDeposit)
                    .where(
                        col(ChainDeposit.chain) == self.chain,
                        col(ChainDeposit.status) == DepositStatus.SEEN.value,
                        col(ChainDeposit.block_number) <= deepest,
                        col(ChainDeposit.user_id).is_not(None),  # a user deleted since
                    )
                    .order_by(col(ChainDeposit.block_number), col(ChainDeposit.log_index))
                )
            ).all()
        confirmed: list[ChainDeposit] = []
        hashes: dict[int, str | None] = {}
        for row in rows:
            if row.block_number not in hashes:
                now = await self.rpc.block(row.block_number)
                hashes[row.block_number] = now.hash if now else None
            if hashes[row.block_number] != row.block_hash:
                log.warning("chain_deposit_reorged", chain=self.chain, tx=row.tx_hash)
                back = row.block_number - 1
                await self._rewind(Block(back, "") if back < 0 else await self._block(back))
                break  # the rest is re-read from the rewound cursor on the next pass
            confirmed.append(row)
        if not confirmed:
            return 0
        return await self._credit(confirmed)

    async def _credit(self, rows: list[ChainDeposit]) -> int:
        """Credit ``rows`` (those the ledger has already were credited before a crash: only
        marked now); returns how many were marked.  A writer's refusal of one (its batch
        failed) leaves it ``seen`` for the next pass, and is raised once the rest is marked."""
        named = {deposit_transfer_id(self.chain, r.tx_hash, r.log_index): r for r in rows}
        async with unit_of_work(self.db) as uow:
            done = await self.ledger.stored(uow, list(named))
        writer = next(iter(self.trading.writers.values()))
        # No timeout: a credit given up on could still commit, and a retry of it would move
        # the funds mirror twice.  The writer always answers.
        todo = [(transfer_id, row) for transfer_id, row in named.items() if transfer_id not in done]
        answers = await asyncio.gather(
            *(
                writer.submit(
                    Deposit(
                        row.user_id or 0,
                        row.asset,
                        row.amount,
                        custody_source(self.chain),
                        transfer_id,
                    )
                )
                for transfer_id, row in todo
            ),
            return_exceptions=True,
        )
        failed = {tid for (tid, _), answer in zip(todo, answers, strict=True) if answer is not None}
        credited = [row for tid, row in named.items() if tid not in failed]
        if credited:
            await self._mark_credited(credited)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return len(credited)

    async def _mark_credited(self, rows: list[ChainDeposit]) -> None:
        now = utcnow()
        async with unit_of_work(self.db) as uow:
            stored = list(
                await uow.session.exec(
                    select(ChainDeposit).where(col(ChainDeposit.id).in_([r.id for r in rows]))
                )
            )
            notices = []
            for row in stored:
                assert row.user_id is not None
                row.status, row.credited_at = DepositStatus.CREDITED.value, now
                uow.session.add(row)
                # Keyed by the log, not the row: a credit retried after a crash queues nothing
                # new.
                notices.append(
                    Notice(
                        row.user_id,
                        "deposit_credited",
                        {
                            "chain": self.chain,
                            "asset": row.asset,
                            "amount": ASSETS[row.asset].format(row.amount),
                            "tx_hash": row.tx_hash,
                        },
                        f"deposit:{self.chain}:{row.tx_hash}:{row.log_index}",
                    )
                )
            await enqueue_many(uow, notices)
            uow.after_commit(self._publisher(stored))
        log.info("chain_deposits_credited", chain=self.chain, count=len(stored))

    def _publisher(self, rows: Sequence[ChainDeposit]) -> AfterCommit:
        """Tell each owner's open Wallet tab, once committed (a failure is only logged: the
        tab also reads ``/api/deposits``).  Deposits to no user of ours go to nobody."""
        events = [(row.user_id, deposit_event(self.chain, row)) for row in rows if row.user_id]

        async def publish() -> None:
            if self.hub is None:
                return
            for user_id, event in events:
                await self.hub.publish(f"user:{user_id}", "event", event)

        return publish


def _chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    """``values`` in slices small enough for one IN list (SQLite caps a statement's
    parameters)."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def deposit_event(chain: str, row: ChainDeposit) -> dict[str, Any]:
    """A deposit as the user's private hub topic carries it: the ``/api/deposits`` fields that
    name it, and its status now."""
    return {
        "type": "deposit",
        "chain": chain,
        "asset": row.asset,
        "amount": ASSETS[row.asset].format(row.amount),
        "tx_hash": row.tx_hash,
        "log_index": row.log_index,
        "status": row.status,
    }


async def watch_chains(
    db: Database,
    ledger: Ledger,
    trading: Trading,
    chains: ChainsSettings,
    *,
    hub: Hub | None = None,
) -> None:
    """A watcher per configured chain (an RPC URL and a vault), for as long as the task lives.
    Run where the books run (the elected process): one writer of each chain's cursor."""
    watchers = [
        DepositWatcher(
            db,
            ledger,
            trading,
            name,
            chain,
            EvmRpc(chain.rpc_url),
            max_blocks=chains.max_blocks_per_scan,
            hub=hub,
        )
        for name, chain in chains.evm.items()
        if chain.rpc_url and chain.vault
    ]
    try:
        async with asyncio.TaskGroup() as group:
            for watcher in watchers:
                group.create_task(
                    watcher.run(chains.poll_seconds), name=f"deposits-{watcher.chain}"
                )
    finally:
        for watcher in watchers:
            await watcher.rpc.close()
