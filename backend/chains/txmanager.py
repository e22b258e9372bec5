"""The operator's transactions on one chain: nonce allocation, EIP-1559 fees, replacement of a
stuck transaction, receipts.

One manager per (chain, operator key), run by the one process that pays withdrawals, so nonces
are allocated by a single task: the next nonce is the larger of what the node counts (pending
included) and one past the highest this key ever stored.  Every signed transaction is stored
before it is broadcast (``ChainTx``): a crash in between loses nothing, the same bytes go out
again.  A transaction without a receipt after ``stuck_seconds`` is replaced: the same nonce,
both fees raised by ``fee_bump_percent`` (at least what the chain asks now), so whichever of
the two is mined, the nonce pays the withdrawal once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.chains.rpc import EvmRpc, RpcError
from backend.chains.vault import revert_code
from backend.chains.withdrawal_models import ChainTx, TxStatus
from backend.config import ChainsSettings

GWEI = 10**9
# When the node has no opinion on the tip (``eth_maxPriorityFeePerGas`` unsupported).
DEFAULT_TIP = 1 * GWEI


class FeeTooHigh(RuntimeError):
    """The chain asks more per gas than the operator pays (``max_fee_gwei``): wait."""


@dataclass(frozen=True, slots=True)
class Fees:
    max_fee: int
    """Wei per gas, at most."""
    tip: int
    """Wei per gas to the block's proposer."""

    def bumped(self, percent: int) -> Fees:
        """Both fees raised by ``percent``, rounded up (a node takes a replacement only above
        its own minimum bump, 10% on geth)."""
        factor = 100 + percent
        return Fees(-(-self.max_fee * factor // 100), -(-self.tip * factor // 100))

    def at_least(self, other: Fees) -> Fees:
        return Fees(max(self.max_fee, other.max_fee), max(self.tip, other.tip))


@dataclass(frozen=True, slots=True)
class Signed:
    nonce: int
    tx_hash: str
    raw: str
    fees: Fees
    data: bytes
    gas: int


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    block_number: int
    ok: bool


class TxManager:
    def __init__(
        self, chain: str, chain_id: int, rpc: EvmRpc, key: str, settings: ChainsSettings
    ) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.rpc = rpc
        self._account: LocalAccount = Account.from_key(key)
        self.sender = str(self._account.address)
        self.bump_percent = settings.fee_bump_percent
        self.stuck_seconds = settings.stuck_seconds
        self.fee_cap = int(settings.max_fee_gwei * Decimal(GWEI))

    async def fees(self) -> Fees:
        """What a transaction pays now: twice the latest base fee (room for six full blocks
        in a row) plus the node's suggested tip."""
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        try:
            tip = int(await self.rpc.call("eth_maxPriorityFeePerGas", []), 16)
        except RpcError:
            tip = DEFAULT_TIP
        return Fees(2 * base + tip, tip)

    async def next_nonce(self, session: AsyncSession) -> int:
        counted = int(await self.rpc.call("eth_getTransactionCount", [self.sender, "pending"]), 16)
        stored = (
            await session.exec(
                select(func.max(col(ChainTx.nonce))).where(
                    col(ChainTx.chain) == self.chain, col(ChainTx.sender) == self.sender
                )
            )
        ).one()
        return max(counted, -1 if stored is None else int(stored) + 1)

    def sign(self, nonce: int, to: str, data: bytes, gas: int, fees: Fees) -> Signed:
        """A type-2 transaction; raises FeeTooHigh above the operator's cap."""
        if fees.max_fee > self.fee_cap:
            raise FeeTooHigh(
                f"{self.chain}: {fees.max_fee / GWEI:.1f} gwei asked, "
                f"{self.fee_cap / GWEI:.1f} at most"
            )
        transaction: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": min(fees.tip, fees.max_fee),
        }
        signed = self._account.sign_transaction(transaction)
        tx_hash = "0x" + bytes(signed.hash).hex()
        return Signed(nonce, tx_hash, "0x" + bytes(signed.raw_transaction).hex(), fees, data, gas)

    def record(
        self, signed: Signed, *, withdrawal_id: int | None = None, sweep_user_id: int | None = None
    ) -> ChainTx:
        """The row to store, in the caller's transaction, before ``broadcast``."""
        return ChainTx(
            chain=self.chain,
            sender=self.sender,
            nonce=signed.nonce,
            tx_hash=signed.tx_hash,
            withdrawal_id=withdrawal_id,
            sweep_user_id=sweep_user_id,
            data="0x" + signed.data.hex(),
            gas=signed.gas,
            max_fee=str(signed.fees.max_fee),
            priority_fee=str(signed.fees.tip),
            raw=signed.raw,
            status=TxStatus.PENDING.value,
        )

    async def broadcast(self, raw: str) -> None:
        """Send the signed bytes; a node that has them already, or has mined them, is fine
        (the receipt tells)."""
        try:
            await self.rpc.call("eth_sendRawTransaction", [raw])
        except RpcError as exc:
            text = str(exc).lower()
            if "already known" in text or "nonce too low" in text or "already imported" in text:
                return
            raise

    async def receipt(self, tx_hash: str) -> Receipt | None:
        found = await self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        if not found or found.get("blockNumber") is None:
            return None
        return Receipt(tx_hash, int(found["blockNumber"], 16), int(found["status"], 16) == 1)

    async def known(self, tx_hash: str) -> bool:
        """Whether the node has the transaction (in its pool or a block)."""
        return bool(await self.rpc.call("eth_getTransactionByHash", [tx_hash]))

    async def mined_nonce(self) -> int:
        """How many of the operator's transactions are in blocks."""
        return int(await self.rpc.call("eth_getTransactionCount", [self.sender, "latest"]), 16)

    async def replacement(self, last: ChainTx, to: str) -> Signed:
        """``last`` again with higher fees: its bump, or what the chain asks now if more."""
        previous = Fees(int(last.max_fee), int(last.priority_fee))
        fees = previous.bumped(self.bump_percent).at_least(await self.fees())
        return self.sign(
            last.nonce, to, bytes.fromhex(last.data.removeprefix("0x")), last.gas, fees
        )

    async def estimate(self, to: str, data: bytes) -> int:
        """The gas ``data`` needs now, with a margin (state can change before it is mined)."""
        call = {"from": self.sender, "to": to, "data": "0x" + data.hex()}
        return int(await self.rpc.call("eth_estimateGas", [call]), 16) * 13 // 10

    async def simulate(self, to: str, data: bytes) -> str | None:
        """The revert's code if the call would fail now, else None."""
        try:
            await self.rpc.call(
                "eth_call", [{"from": self.sender, "to": to, "data": "0x" + data.hex()}, "latest"]
            )
        except RpcError as exc:
            if exc.data is None and "revert" not in str(exc).lower():
                raise  # the node is down or confused: not the vault's answer
            return revert_code(exc.data)
        return None
