"""A small EVM JSON-RPC client: the four calls a deposit watcher makes, and the token balance
the custody reconciliation reads, over httpx."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from backend.chains.evm import DEPOSITED_TOPIC

# A node that does not answer in this long is treated as down for this pass (the watcher
# retries at its next poll).
RPC_TIMEOUT_SECONDS = 10.0
# The ERC-20 ``balanceOf(address)`` selector: keccak("balanceOf(address)")[:4].
BALANCE_OF = "0x70a08231"


class RpcError(RuntimeError):
    """The node answered with an error, or not at all."""


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
        if answer.get("error"):
            raise RpcError(f"{method}: {answer['error']}")
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
