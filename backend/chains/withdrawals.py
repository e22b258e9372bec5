"""Withdrawals as users and admins ask for them: the quote to sign, the request (checked, then
debited through the trading writers), the list, cancelling, approving and rejecting.  Sending is
``payouts.py``'s, in the process that runs the books.

A request is recorded before its debit and moved on after it, each in its own transaction:

* ``requested``: recorded; the debit is on its way.  Refused by the books, the row is deleted
  (nothing moved).  Left here by a crash or a timeout, ``payouts`` settles it: debited (the
  ledger has its transfer) → on; not → ``refused``.
* ``pending_approval`` (above the asset's threshold) or ``queued``: debited into
  ``sys:withdrawing``; the user may cancel, an admin may approve or reject.

The user's authorisation is the vault's EIP-712 ``Withdrawal`` (``vault.py``), signed by the
receiving wallet with the vault's next nonce for it, so one wallet has one withdrawal in flight
per chain (``nonce_slot``): the vault's nonces are sequential, and a cancelled request must
leave no gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from eth_utils.address import is_hex_address, to_checksum_address
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.audit.service import AuditContext, record
from backend.chains.deposit_models import ChainCursor
from backend.chains.deposit_queries import UnknownChain, UnknownDepositAsset
from backend.chains.evm import NATIVE, NATIVE_DECIMALS
from backend.chains.rpc import EvmRpc, RpcError
from backend.chains.vault import decode_uint, nonces_call, signer_of, typed_data
from backend.chains.withdrawal_models import (
    COUNTED,
    UNSENT,
    ChainWithdrawal,
    WithdrawalStatus,
)
from backend.clock import utcnow
from backend.config import ChainsSettings, EvmChainSettings, WithdrawalLimits
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import BadRequest, Conflict, DomainError, NotFound
from backend.hub.hub import Hub
from backend.ledger.assets import ASSETS, Asset
from backend.ledger.service import derived_id
from backend.market.grid import PLAIN_DECIMAL
from backend.trading.commands import WITHDRAWING, InsufficientFunds, Withdraw
from backend.trading.router import TradingRouter
from backend.users.models import User

log = structlog.get_logger(__name__)

# A user's list shows at most this many, newest first; an admin's queue as many.
PAGE = 100
# A signed deadline must leave the operator this long to send it.
MIN_DEADLINE_SECONDS = 300
# ...and may be this much later than the quote's (a wallet that took its time to sign).
DEADLINE_SLACK_SECONDS = 600


class WithdrawalsUnavailable(Conflict):
    """The chain is listed but nothing pays withdrawals here (no node or vault configured)."""

    code = "withdrawals_unavailable"


class ChainUnreachable(DomainError):
    """The chain's node did not answer: try again."""

    code = "chain_unavailable"


class InvalidAddress(BadRequest):
    code = "invalid_address"


class InvalidAmount(BadRequest):
    code = "invalid_amount"


class BelowMinimum(BadRequest):
    code = "below_minimum"


class AboveMaximum(BadRequest):
    code = "above_maximum"


class DailyLimit(Conflict):
    code = "daily_limit"


class WithdrawalInFlight(Conflict):
    code = "withdrawal_in_flight"


class InvalidAuthorization(BadRequest):
    code = "authorization_invalid"


class StaleAuthorization(Conflict):
    """Signed for another nonce or with a deadline we do not take: quote and sign again."""

    code = "authorization_stale"


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"


class WithdrawalNotCancellable(Conflict):
    code = "withdrawal_not_cancellable"


@dataclass(frozen=True, slots=True)
class Draft:
    """A withdrawal checked against the chain's rules, before anything is asked of a node."""

    chain: str
    chain_id: int
    vault: str
    asset: Asset
    limits: WithdrawalLimits
    token: str
    decimals: int
    amount: int
    fee: int
    address: str

    @property
    def raw_amount(self) -> int:
        """What the vault pays, in the token's units: the amount less the fee, scaled up."""
        factor: int = 10 ** (self.decimals - self.asset.scale)
        return (self.amount - self.fee) * factor

    @property
    def needs_approval(self) -> bool:
        return self.amount > self.asset.to_units(self.limits.approval_above)

    def message(self, nonce: int, deadline: int) -> dict[str, Any]:
        return typed_data(
            self.chain_id, self.vault, self.address, self.token, self.raw_amount, nonce, deadline
        )


@dataclass(frozen=True, slots=True)
class Quote:
    draft: Draft
    nonce: int
    deadline: int
    typed_data: dict[str, Any]


def withdrawal_event(row: ChainWithdrawal) -> dict[str, Any]:
    """What the user's private topic hears when a withdrawal moves."""
    asset = ASSETS[row.asset]
    return {
        "type": "withdrawal",
        "id": row.id,
        "chain": row.chain,
        "asset": row.asset,
        "amount": asset.format(row.amount),
        "status": row.status,
        "error": row.error,
        "tx_hash": row.tx_hash,
        "refunded": row.refunded_at is not None,
    }


async def announce(hub: Hub, row: ChainWithdrawal) -> None:
    """Publish the withdrawal's new state to its owner; a hub hiccup is logged, never raised
    (the row is the truth, and the tab re-reads it)."""
    if row.user_id is None:
        return
    try:
        await hub.publish(f"user:{row.user_id}", "event", withdrawal_event(row))
    except Exception:
        log.exception("withdrawal_event_failed", withdrawal=row.id)


def debit_id(withdrawal_id: int) -> str:
    return derived_id("wdebit", str(withdrawal_id))


class Withdrawals:
    def __init__(
        self,
        db: Database,
        trading: TradingRouter,
        hub: Hub,
        settings: ChainsSettings,
        *,
        rpc_for: type[EvmRpc] = EvmRpc,
    ) -> None:
        self.db = db
        self.trading = trading
        self.hub = hub
        self.settings = settings
        # Only where withdrawals can be sent: without the operator's key they would wait,
        # debited, for ever.
        self._rpcs = {
            name: rpc_for(chain.rpc_url)
            for name, chain in settings.evm.items()
            if settings.pays(chain)
        }

    async def close(self) -> None:
        for rpc in self._rpcs.values():
            await rpc.close()

    # Checking -------------------------------------------------------------------------------

    def draft(self, chain: str, asset: str, amount: str, address: str) -> Draft:
        """The request checked against the chain's rules; raises the first rule it breaks."""
        found = self._chain(chain)
        if asset not in found.withdrawals:
            taken = ", ".join(found.withdrawals)
            raise UnknownDepositAsset(f"{asset!r} is not paid on {chain}; assets: {taken}")
        limits = found.withdrawals[asset]
        token, decimals = (
            (found.usdt, found.usdt_decimals) if asset == "USDT" else (NATIVE, NATIVE_DECIMALS)
        )
        if not token:
            raise WithdrawalsUnavailable(f"{asset} is not paid on {chain} here")
        units = self._units(ASSETS[asset], amount)
        minimum, maximum = limits.minimum, limits.maximum
        if units < ASSETS[asset].to_units(minimum):
            raise BelowMinimum(f"the smallest withdrawal is {minimum:f} {asset}")
        if units > ASSETS[asset].to_units(maximum):
            raise AboveMaximum(f"the largest withdrawal is {maximum:f} {asset}")
        return Draft(
            chain=chain,
            chain_id=found.chain_id,
            vault=found.vault,
            asset=ASSETS[asset],
            limits=limits,
            token=token,
            decimals=decimals,
            amount=units,
            fee=ASSETS[asset].to_units(limits.fee),
            address=evm_address(address),
        )

    def _chain(self, name: str) -> EvmChainSettings:
        found = self.settings.evm.get(name)
        if found is None:
            raise UnknownChain(f"no chain {name!r}; chains: {', '.join(self.settings.evm)}")
        if name not in self._rpcs:
            raise WithdrawalsUnavailable(f"withdrawals on {name} are not open")
        return found

    @staticmethod
    def _units(asset: Asset, amount: str) -> int:
        """A plain decimal as a person types it (no sign, exponent, separators: the order
        forms' rule), positive, on the asset's grid."""
        refusal = InvalidAmount(
            f"the amount must be a positive plain decimal (such as 25.5) with at most "
            f"{asset.scale} decimal places of {asset.code}"
        )
        if not PLAIN_DECIMAL.fullmatch(amount):
            raise refusal
        try:
            units = asset.to_units(Decimal(amount))
        except (InvalidOperation, ValueError):
            raise refusal from None
        if units <= 0:
            raise refusal
        return units

    async def _vault_nonce(self, draft: Draft) -> int:
        call = {"to": draft.vault, "data": "0x" + nonces_call(draft.address).hex()}
        try:
            return decode_uint(
                str(await self._rpcs[draft.chain].call("eth_call", [call, "latest"]))
            )
        except (RpcError, ValueError) as exc:
            log.warning("chain_unreachable", chain=draft.chain, error=str(exc))
            raise ChainUnreachable(f"the {draft.chain} node did not answer: try again") from None

    async def _check_user(self, session: AsyncSession, user_id: int, draft: Draft) -> None:
        """No other withdrawal of this wallet in flight on this chain; within the daily limit."""
        busy = (
            await session.exec(
                select(ChainWithdrawal.id).where(
                    col(ChainWithdrawal.chain) == draft.chain,
                    col(ChainWithdrawal.address) == draft.address,
                    col(ChainWithdrawal.status).in_(
                        [s.value for s in COUNTED if s is not WithdrawalStatus.CONFIRMED]
                    ),
                )
            )
        ).first()
        if busy is not None:
            raise WithdrawalInFlight(
                f"withdrawal {busy} to this wallet on {draft.chain} is not finished yet"
            )
        since = utcnow() - timedelta(days=1)
        spent = (
            await session.exec(
                select(func.coalesce(func.sum(col(ChainWithdrawal.amount)), 0)).where(
                    col(ChainWithdrawal.user_id) == user_id,
                    col(ChainWithdrawal.asset) == draft.asset.code,
                    col(ChainWithdrawal.status).in_([s.value for s in COUNTED]),
                    col(ChainWithdrawal.created_at) > since,
                )
            )
        ).one()
        daily = draft.asset.to_units(draft.limits.daily)
        if int(spent) + draft.amount > daily:
            left = draft.asset.format(max(0, daily - int(spent)))
            raise DailyLimit(f"over the 24-hour limit: {left} {draft.asset.code} left")

    # Users ----------------------------------------------------------------------------------

    async def quote(
        self, session: AsyncSession, user_id: int, chain: str, asset: str, amount: str, address: str
    ) -> Quote:
        """What the wallet at ``address`` signs to withdraw ``amount``: nothing is debited."""
        draft = self.draft(chain, asset, amount, address)
        await self._check_user(session, user_id, draft)
        nonce = await self._vault_nonce(draft)
        deadline = int(time.time()) + self.settings.withdrawal_deadline_seconds
        return Quote(draft, nonce, deadline, draft.message(nonce, deadline))

    async def request(
        self,
        audit: AuditContext,
        user_id: int,
        draft: Draft,
        deadline: int,
        signature: str,
    ) -> ChainWithdrawal:
        """Check the authorisation, record, debit: the withdrawal as it then stands."""
        now = int(time.time())
        latest = now + self.settings.withdrawal_deadline_seconds + DEADLINE_SLACK_SECONDS
        if not now + MIN_DEADLINE_SECONDS <= deadline <= latest:
            raise StaleAuthorization("the deadline is too near or too far: quote again")
        # The wallet's withdrawal in flight first: while it is, that is why a second one is
        # refused (its signature may also no longer match the vault's nonce, once it is paid).
        async with self.db.reads() as session:
            await self._check_user(session, user_id, draft)
        nonce = await self._vault_nonce(draft)
        if signer_of(draft.message(nonce, deadline), signature) != draft.address:
            raise InvalidAuthorization(
                "the signature is not this wallet's for this withdrawal, chain and nonce "
                "(sign the latest quote)"
            )
        row = ChainWithdrawal(
            user_id=user_id,
            chain=draft.chain,
            asset=draft.asset.code,
            amount=draft.amount,
            fee=draft.fee,
            token=draft.token,
            raw_amount=str(draft.raw_amount),
            address=draft.address,
            vault_nonce=nonce,
            nonce_slot=nonce,
            deadline=deadline,
            signature="0x" + signature.removeprefix("0x").lower(),
            status=WithdrawalStatus.REQUESTED.value,
        )
        try:
            async with unit_of_work(self.db) as uow:
                # One request per user at a time past this point: the write lock on the user's
                # row (a row lock on PostgreSQL, the database's on SQLite) is held until this
                # transaction commits, so two requests cannot both fit in the daily limit.
                await uow.session.exec(
                    update(User).where(col(User.id) == user_id).values(role=col(User.role))
                )
                await self._check_user(uow.session, user_id, draft)
                uow.session.add(row)
                await uow.session.flush()
        except IntegrityError:
            raise WithdrawalInFlight(
                f"another withdrawal to this wallet on {draft.chain} is on its way"
            ) from None
        assert row.id is not None
        try:
            await self.trading.withdraw(
                Withdraw(user_id, draft.asset.code, draft.amount, WITHDRAWING, debit_id(row.id))
            )
        except InsufficientFunds:
            async with unit_of_work(self.db) as uow:
                stored = await uow.session.get(ChainWithdrawal, row.id)
                if stored is not None:
                    await uow.session.delete(stored)
            raise
        # Any other failure leaves it ``requested``: payouts settle it once the debit's fate
        # is known.
        status = (
            WithdrawalStatus.PENDING_APPROVAL if draft.needs_approval else WithdrawalStatus.QUEUED
        )
        async with unit_of_work(self.db) as uow:
            stored = await uow.session.get(ChainWithdrawal, row.id)
            assert stored is not None
            if stored.status == WithdrawalStatus.REQUESTED.value:
                stored.status, stored.updated_at = status.value, utcnow()
                uow.session.add(stored)
            await record(
                uow.session,
                audit,
                "withdrawal.request",
                target=f"user:{user_id}",
                details={
                    "withdrawal_id": row.id,
                    "chain": draft.chain,
                    "asset": draft.asset.code,
                    "amount": draft.asset.format(draft.amount),
                    "address": draft.address,
                },
            )
            row = stored
        await announce(self.hub, row)
        return row

    async def mine(self, session: AsyncSession, user_id: int) -> list[ChainWithdrawal]:
        rows = await session.exec(
            select(ChainWithdrawal)
            .where(col(ChainWithdrawal.user_id) == user_id)
            .order_by(col(ChainWithdrawal.id).desc())
            .limit(PAGE)
        )
        return list(rows.all())

    async def heads(self, session: AsyncSession) -> dict[str, int]:
        """How far each chain has been read (the deposit watcher's cursor): what a sent
        withdrawal's confirmations are counted to, without asking a node."""
        return {row.chain: row.block_number for row in await session.exec(select(ChainCursor))}

    def required(self, chain: str) -> int:
        found = self.settings.evm.get(chain)
        return found.confirmations if found else 0

    async def cancel(
        self, audit: AuditContext, user_id: int, withdrawal_id: int
    ) -> ChainWithdrawal:
        """Cancel one not sent yet; the amount goes back (``payouts`` returns it)."""
        row = await self._end(
            withdrawal_id, WithdrawalStatus.CANCELLED, audit, owner=user_id, action="cancel"
        )
        return row

    # Admins ---------------------------------------------------------------------------------

    async def awaiting(self, session: AsyncSession) -> list[ChainWithdrawal]:
        """Withdrawals waiting for approval, oldest first."""
        rows = await session.exec(
            select(ChainWithdrawal)
            .where(col(ChainWithdrawal.status) == WithdrawalStatus.PENDING_APPROVAL.value)
            .order_by(col(ChainWithdrawal.id))
            .limit(PAGE)
        )
        return list(rows.all())

    async def approve(self, audit: AuditContext, withdrawal_id: int) -> ChainWithdrawal:
        row = await self._move(
            withdrawal_id,
            (WithdrawalStatus.PENDING_APPROVAL,),
            WithdrawalStatus.QUEUED,
            audit,
            "withdrawal.approve",
        )
        return row

    async def reject(self, audit: AuditContext, withdrawal_id: int) -> ChainWithdrawal:
        return await self._end(withdrawal_id, WithdrawalStatus.REJECTED, audit, action="reject")

    async def _end(
        self,
        withdrawal_id: int,
        status: WithdrawalStatus,
        audit: AuditContext,
        *,
        action: str,
        owner: int | None = None,
    ) -> ChainWithdrawal:
        allowed = (
            UNSENT if status is WithdrawalStatus.CANCELLED else (WithdrawalStatus.PENDING_APPROVAL,)
        )
        return await self._move(
            withdrawal_id, allowed, status, audit, f"withdrawal.{action}", owner=owner
        )

    async def _move(
        self,
        withdrawal_id: int,
        allowed: tuple[WithdrawalStatus, ...],
        status: WithdrawalStatus,
        audit: AuditContext,
        action: str,
        *,
        owner: int | None = None,
    ) -> ChainWithdrawal:
        """One conditional UPDATE: it wins against the sender claiming the row, or loses."""
        ended = status in (WithdrawalStatus.CANCELLED, WithdrawalStatus.REJECTED)
        async with unit_of_work(self.db) as uow:
            row = await uow.session.get(ChainWithdrawal, withdrawal_id)
            if row is None or (owner is not None and row.user_id != owner):
                raise WithdrawalNotFound(f"no withdrawal {withdrawal_id}")
            values: dict[str, Any] = {"status": status.value, "updated_at": utcnow()}
            if ended:
                values["nonce_slot"] = None  # the vault never saw this nonce used
            if status is WithdrawalStatus.QUEUED:
                values["approved_by"] = audit.actor_id
            result = await uow.session.exec(
                update(ChainWithdrawal)
                .where(
                    col(ChainWithdrawal.id) == withdrawal_id,
                    col(ChainWithdrawal.status).in_([s.value for s in allowed]),
                    # Queued again after a send (a lost transaction): it may have been paid, so
                    # it is the operator's to settle, never the user's to cancel.
                    col(ChainWithdrawal.sent_at).is_(None),
                )
                .values(**values)
            )
            if result.rowcount != 1:
                raise WithdrawalNotCancellable(
                    f"withdrawal {withdrawal_id} is {row.status}: it can no longer be "
                    + ("cancelled" if ended else "approved")
                )
            await record(
                uow.session,
                audit,
                action,
                target=f"user:{row.user_id}",
                details={
                    "withdrawal_id": withdrawal_id,
                    "amount": ASSETS[row.asset].format(row.amount),
                },
            )
            await uow.session.refresh(row)
        await announce(self.hub, row)
        return row


def evm_address(text: str) -> str:
    """An EVM address, EIP-55: all lower case is taken as given, mixed case must checksum."""
    if not text.startswith("0x") or not is_hex_address(text):
        raise InvalidAddress("not an EVM address (0x and 40 hex digits)")
    checksummed = to_checksum_address(text)
    body = text.removeprefix("0x")
    if body != body.lower() and body != body.upper() and text != checksummed:
        raise InvalidAddress("the address's checksum (its mixed case) is wrong: a typo?")
    return checksummed
