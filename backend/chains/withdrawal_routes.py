"""HTTP: withdrawals (the quote to sign, the request, the list, cancelling) and the admins'
approval queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from backend.audit.service import AuditContext
from backend.auth.guards import admin_only
from backend.auth.sessions import SignedIn, signed_in_id
from backend.chains.withdrawal_models import ChainWithdrawal
from backend.chains.withdrawals import Withdrawals
from backend.db.uow import UnitOfWork
from backend.inputs import Id32
from backend.ledger.assets import ASSETS
from backend.openapi import errors

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
Amount = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Address = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class WithdrawalDraftBody(msgspec.Struct, forbid_unknown_fields=True):
    chain: Short
    asset: Short
    amount: Amount
    """In the asset's units, a decimal string (``"25.5"``): debited, the fee included."""
    address: Address
    """The receiving wallet, EIP-55; it signs the authorisation."""


class WithdrawalBody(msgspec.Struct, forbid_unknown_fields=True):
    chain: Short
    asset: Short
    amount: Amount
    address: Address
    deadline: Annotated[int, msgspec.Meta(ge=0, le=2**40)]
    """The quote's deadline, as signed."""
    signature: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """The wallet's ``eth_signTypedData_v4`` signature of the quote's ``typed_data``."""


class QuoteView(msgspec.Struct):
    chain: str
    asset: str
    amount: str
    fee: str
    receive: str
    """What arrives in the wallet: the amount less the fee."""
    address: str
    needs_approval: bool
    """Above the asset's threshold: an admin approves it before it is sent."""
    nonce: int
    deadline: int
    typed_data: dict[str, Any]
    """EIP-712: sign with ``eth_signTypedData_v4`` from ``address``, then POST it."""


class WithdrawalView(msgspec.Struct):
    id: int
    chain: str
    asset: str
    amount: str
    fee: str
    receive: str
    address: str
    status: str
    """``requested``, ``pending_approval``, ``queued``, ``sent``, ``confirmed``, ``failed``,
    ``cancelled``, ``rejected``, ``refused``."""
    error: str | None
    tx_hash: str | None
    block_number: int | None
    confirmations: int
    """Blocks on top of the paying transaction's, its own included, as far as the chain has
    been read; 0 before it is in a block."""
    required: int
    """Confirmations before it counts as paid."""
    refunded: bool
    """Ended unpaid and the amount is back in the balance."""
    created_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None
    user_id: int | None = None
    """Admin views only."""

    @classmethod
    def of(
        cls,
        row: ChainWithdrawal,
        *,
        required: int,
        head: int | None = None,
        admin: bool = False,
    ) -> WithdrawalView:
        """``head``: the chain's block read last (None: not known here)."""
        asset = ASSETS[row.asset]
        assert row.id is not None
        seen = 0
        if row.block_number is not None and head is not None:
            seen = max(0, head - row.block_number + 1)
        if row.status == "confirmed":
            seen = max(seen, required)
        return cls(
            id=row.id,
            chain=row.chain,
            asset=row.asset,
            amount=asset.format(row.amount),
            fee=asset.format(row.fee),
            receive=asset.format(row.amount - row.fee),
            address=row.address,
            status=row.status,
            error=row.error,
            tx_hash=row.tx_hash,
            block_number=row.block_number,
            confirmations=seen,
            required=required,
            refunded=row.refunded_at is not None,
            created_at=row.created_at,
            sent_at=row.sent_at,
            confirmed_at=row.confirmed_at,
            user_id=row.user_id if admin else None,
        )


class WithdrawalsController(Controller):
    path = "/api/withdrawals"
    tags = ["withdrawals"]

    @post("/quote", status_code=200, responses=errors(400, 409, 503))
    async def quote(
        self,
        request: SignedIn,
        data: JSONBody[WithdrawalDraftBody],
        uow: NamedDependency[UnitOfWork],
        withdrawals: NamedDependency[Withdrawals],
    ) -> QuoteView:
        """The EIP-712 authorisation the receiving wallet signs, with the fee and what
        arrives.  Nothing is debited."""
        quote = await withdrawals.quote(
            uow.session, signed_in_id(request), data.chain, data.asset, data.amount, data.address
        )
        draft, asset = quote.draft, quote.draft.asset
        return QuoteView(
            chain=draft.chain,
            asset=asset.code,
            amount=asset.format(draft.amount),
            fee=asset.format(draft.fee),
            receive=asset.format(draft.amount - draft.fee),
            address=draft.address,
            needs_approval=draft.needs_approval,
            nonce=quote.nonce,
            deadline=quote.deadline,
            typed_data=quote.typed_data,
        )

    @post(status_code=201, responses=errors(400, 409, 503))
    async def create(
        self,
        request: SignedIn,
        data: JSONBody[WithdrawalBody],
        audit: NamedDependency[AuditContext],
        withdrawals: NamedDependency[Withdrawals],
    ) -> WithdrawalView:
        """Withdraw: the signed quote.  Debited at once (409 ``insufficient_funds`` when the
        balance is short, and nothing moves); above the threshold it waits for an admin."""
        draft = withdrawals.draft(data.chain, data.asset, data.amount, data.address)
        row = await withdrawals.request(
            audit, signed_in_id(request), draft, data.deadline, data.signature
        )
        return WithdrawalView.of(row, required=withdrawals.required(row.chain))

    @get()
    async def mine(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        withdrawals: NamedDependency[Withdrawals],
    ) -> list[WithdrawalView]:
        """My withdrawals, newest first."""
        rows = await withdrawals.mine(uow.session, signed_in_id(request))
        heads = await withdrawals.heads(uow.session)
        return [
            WithdrawalView.of(
                row, required=withdrawals.required(row.chain), head=heads.get(row.chain)
            )
            for row in rows
        ]

    @delete("/{withdrawal_id:int}", status_code=200, responses=errors(404, 409))
    async def cancel(
        self,
        request: SignedIn,
        withdrawal_id: Id32,
        audit: NamedDependency[AuditContext],
        withdrawals: NamedDependency[Withdrawals],
    ) -> WithdrawalView:
        """Cancel a withdrawal not sent yet; its amount comes back to the balance shortly."""
        row = await withdrawals.cancel(audit, signed_in_id(request), withdrawal_id)
        return WithdrawalView.of(row, required=withdrawals.required(row.chain))


class WithdrawalsAdminController(Controller):
    path = "/api/admin/withdrawals"
    tags = ["admin"]
    guards = [admin_only]

    @get()
    async def awaiting(
        self, uow: NamedDependency[UnitOfWork], withdrawals: NamedDependency[Withdrawals]
    ) -> list[WithdrawalView]:
        """Withdrawals waiting for approval, oldest first (admins only)."""
        rows = await withdrawals.awaiting(uow.session)
        return [
            WithdrawalView.of(row, required=withdrawals.required(row.chain), admin=True)
            for row in rows
        ]

    @post("/{withdrawal_id:int}/approve", status_code=200, responses=errors(404, 409))
    async def approve(
        self,
        withdrawal_id: Id32,
        audit: NamedDependency[AuditContext],
        withdrawals: NamedDependency[Withdrawals],
    ) -> WithdrawalView:
        """Send it (admins only; audited)."""
        row = await withdrawals.approve(audit, withdrawal_id)
        return WithdrawalView.of(row, required=withdrawals.required(row.chain), admin=True)

    @post("/{withdrawal_id:int}/reject", status_code=200, responses=errors(404, 409))
    async def reject(
        self,
        withdrawal_id: Id32,
        audit: NamedDependency[AuditContext],
        withdrawals: NamedDependency[Withdrawals],
    ) -> WithdrawalView:
        """Refuse it: the amount goes back to the user (admins only; audited)."""
        row = await withdrawals.reject(audit, withdrawal_id)
        return WithdrawalView.of(row, required=withdrawals.required(row.chain), admin=True)
