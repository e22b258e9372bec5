"""A small EVM JSON-RPC client: the four calls a deposit watcher makes, the token balance the
custody reconciliation reads, and a contract wallet's EIP-1271 answer, over httpx."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from eth_abi.abi import encode

from backend.chains.evm import DEPOSITED_TOPIC

# A node that does not answer in this long is treated as down for this pass (the watcher
# retries at its next poll).
RPC_TIMEOUT_SECONDS = 10.0
# The ERC-20 ``balanceOf(address)`` selector: keccak("balanceOf(address)")[:4].
BALANCE_OF = "0x70a08231"
# EIP-1271's ``isValidSignature(bytes32,bytes)`` selector, which is also the magic value a valid
# signature gets back.
ERC1271_MAGIC = bytes.fromhex("1626ba7e")


class RpcError(RuntimeError):
    """The node answered with an error, or not at all."""

    def __init__(self, message: str, *, data: str | None = None) -> None:
        super().__init__(message)
        self.data = data
        """A revert's return data (``0x`` + selector + arguments), when the node gave it."""


class Reverted(RpcError):
    """The node ran the call and the contract reverted: the contract's answer, not an outage."""


def _reverted(error: Any) -> bool:
    """Whether a JSON-RPC error says the call reverted: code 3 (geth, anvil, reth) or, on other
    nodes, "revert" in the message."""
    if not isinstance(error, dict):
        return False
    return error.get("code") == 3 or "revert" in str(error.get("message", "")).lower()


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str


class EvmRpc:
    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=RPC_TIMEOUT_SECONDS)
        self._ids = itertools.count(1)

    async def close(self) -> None:
        await self._client.aclose()

    async def call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = await self._client.post(self._url, json=body)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RpcError(f"{method}: {exc!r}") from exc
        error = answer.get("error")
        if error:
            data = error.get("data") if isinstance(error, dict) else None
            raise (Reverted if _reverted(error) else RpcError)(
                f"{method}: {error}", data=data if isinstance(data, str) else None
            )
        return answer.get("result")

    async def head(self) -> int:
        return int(await self.call("eth_blockNumber", []), 16)

    async def block(self, number: int) -> Block | None:
        """The block at this height on the node's chain now (None above its head)."""
        found = await self.call("eth_getBlockByNumber", [hex(number), False])
        if found is None:
            return None
        return Block(int(found["number"], 16), str(found["hash"]).lower())

    async def deposit_logs(self, vault: str, start: int, end: int) -> list[dict[str, Any]]:
        """The vault's ``Deposited`` logs in blocks ``start`` to ``end``, both included."""
        logs = await self.call(
            "eth_getLogs",
            [
                {
                    "address": vault,
                    "fromBlock": hex(start),
                    "toBlock": hex(end),
                    "topics": [DEPOSITED_TOPIC],
                }
            ],
        )
        return [log for log in logs if not log.get("removed")]

    async def token_balance(self, token: str, holder: str) -> int:
        """``token.balanceOf(holder)`` at the node's latest block, in the token's own units."""
        data = BALANCE_OF + holder.lower().removeprefix("0x").rjust(64, "0")
        found = await self.call("eth_call", [{"to": token, "data": data}, "latest"])
        try:
            return int(str(found), 16)
        except ValueError as exc:
            raise RpcError(f"eth_call balanceOf: not a number: {found!r}") from exc

    async def native_balance(self, holder: str) -> int:
        """``holder``'s native coin (wei) at the node's latest block."""
        found = await self.call("eth_getBalance", [holder, "latest"])
        try:
            return int(str(found), 16)
        except ValueError as exc:
            raise RpcError(f"eth_getBalance: not a number: {found!r}") from exc

    async def code(self, address: str) -> bytes:
        """The contract code at ``address`` at the node's latest block (empty for an EOA)."""
        found = await self.call("eth_getCode", [address, "latest"])
        try:
            return bytes.fromhex(str(found).removeprefix("0x"))
        except ValueError as exc:
            raise RpcError(f"eth_getCode: not hex: {found!r}") from exc

    async def is_valid_signature(self, contract: str, digest: bytes, signature: bytes) -> bool:
        """EIP-1271: whether ``contract.isValidSignature(digest, signature)`` answers the magic
        value at the node's latest block.  A revert is a no (many wallets refuse that way)."""
        data = "0x" + (ERC1271_MAGIC + encode(["bytes32", "bytes"], [digest, signature])).hex()
        try:
            found = await self.call("eth_call", [{"to": contract, "data": data}, "latest"])
        except Reverted:
            return False
        try:
            answer = bytes.fromhex(str(found).removeprefix("0x"))
        except ValueError as exc:
            raise RpcError(f"eth_call isValidSignature: not hex: {found!r}") from exc
        # As OpenZeppelin's SignatureChecker reads it: the first word is the selector, padded.
        return answer[:32] == ERC1271_MAGIC.ljust(32, b"\0")
