"""What the EVM tests share: JSON-RPC calls to anvil, deploying the committed artifacts, and a
wallet signing a withdrawal's EIP-712 authorisation as ``eth_signTypedData_v4`` would."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from backend.testing.anvil import Anvil, start_anvil

EVM = Path(__file__).resolve().parents[1] / "contracts" / "evm"
FORWARDER = EVM / "artifacts" / "DepositForwarder.json"


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A node call's result; a node error fails the test."""
    answer = w3.provider.make_request(RPCEndpoint(method), list(params))
    assert "error" not in answer, answer
    return answer["result"]


class Node:
    """A running anvil and the snapshot each test starts from."""

    def __init__(self, anvil: Anvil) -> None:
        self.anvil = anvil
        self.url = anvil.url
        self._snapshot = str(rpc(Web3(HTTPProvider(anvil.url)), "evm_snapshot"))

    def fresh(self) -> Web3:
        """The node as it was when started (the snapshot reverted, and taken again)."""
        w3 = Web3(HTTPProvider(self.url))
        assert rpc(w3, "evm_revert", self._snapshot) is True
        self._snapshot = str(rpc(w3, "evm_snapshot"))
        return w3


@contextmanager
def running_nodes(chain_ids: Mapping[str, int]) -> Iterator[dict[str, Node]]:
    """An anvil per chain name, with that chain id, stopped when the block ends."""
    started: dict[str, Node] = {}
    try:
        for name, chain_id in chain_ids.items():
            started[name] = Node(start_anvil(chain_id))
        yield started
    finally:
        for node in started.values():
            node.anvil.stop()


def deploy_contract(w3: Web3, artifact: str, deployer: ChecksumAddress, *args: Any) -> Contract:
    """``contracts/evm/artifacts/<artifact>.json`` deployed by ``deployer`` (an unlocked
    anvil account)."""
    spec = json.loads((EVM / "artifacts" / f"{artifact}.json").read_text())
    factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": deployer})
    )
    assert receipt["contractAddress"] is not None
    return w3.eth.contract(address=receipt["contractAddress"], abi=spec["abi"])


def sign_withdrawal(wallet: LocalAccount, typed: dict[str, Any]) -> str:
    """A quote's ``typed_data`` signed by ``wallet`` (its uint256 fields come as decimal
    strings, as JSON carries them)."""
    message = {
        key: int(value) if key in ("amount", "nonce", "deadline") else value
        for key, value in typed["message"].items()
    }
    signed = wallet.sign_message(encode_typed_data(full_message={**typed, "message": message}))
    return "0x" + bytes(signed.signature).hex()


class NodeRelay:
    """A JSON-RPC relay to anvil on a loopback port, as a provider in front of a node: notes
    the methods asked; stops (connections refused, as from a node that is down) and starts
    again on the same port; with ``hide_receipts``, answers receipts ``null``, as a
    load-balanced provider whose node is a block behind does."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.methods: list[str] = []
        self.hide_receipts = False
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        node = self

        class Relay(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                call = json.loads(body)
                node.methods.append(call["method"])
                if node.hide_receipts and call["method"] == "eth_getTransactionReceipt":
                    reply = json.dumps({"jsonrpc": "2.0", "id": call["id"], "result": None})
                    self._answer(reply.encode())
                    return
                request = urllib.request.Request(  # noqa: S310  # anvil on loopback
                    node.upstream, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
                    self._answer(answer.read())

            def _answer(self, reply: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Relay)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
