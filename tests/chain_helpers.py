"""What the EVM tests share: JSON-RPC calls to anvil, deploying the committed artifacts, and a
wallet signing a withdrawal's EIP-712 authorisation as ``eth_signTypedData_v4`` would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

EVM = Path(__file__).resolve().parents[1] / "contracts" / "evm"
FORWARDER = EVM / "artifacts" / "DepositForwarder.json"


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A node call's result; a node error fails the test."""
    answer = w3.provider.make_request(RPCEndpoint(method), list(params))
    assert "error" not in answer, answer
    return answer["result"]


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
