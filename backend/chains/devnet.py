"""The embedded demo's chains: two anvils standing in for Ethereum (chain id 1) and BNB Chain
(56), the vault and a test USDT deployed on each, so the Wallet tab's deposits work on a laptop
with no provider.  Never in production (``wanted``).

Everything lives under ``APP_DATA_DIR``: each chain's state file in ``devnet/`` (blocks and
logs included, so the deposit watcher's cursor stays valid across restarts), the deployed
addresses in ``devnet/contracts.json``, and the operator's key in ``secrets/devnet_operator``.
A later start reuses them, and deploys again where the code is gone (a deleted state file).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint, Wei

from backend.chains.anvil import Anvil, AnvilUnavailableError, find_anvil, start_anvil
from backend.chains.evm import MAX_USER_ID, chain_user_id, deposit_address, forwarder_creation_code
from backend.config import ROOT, Environment, Settings

ARTIFACTS = ROOT / "contracts" / "evm" / "artifacts"
# Name: chain id and TestUSDT's decimals, those of the real chains' USDT.
CHAINS = {"ethereum": (1, 6), "bnb": (56, 18)}
# A block every 2 s: confirmations advance by themselves, and 3 of them credit a deposit in
# about 6 s, quick enough to watch in the Wallet tab.
BLOCK_TIME_S = 2
CONFIRMATIONS = 3
# The watchers ask every second: a node on loopback answers in a millisecond.
POLL_SECONDS = 1
# Gas for a year of demo withdrawals; anvil mints it (``anvil_setBalance``).
OPERATOR_FUNDS_WEI = 100 * 10**18
# Room for a sweep that deploys the forwarder and moves one token (~360k measured): sent right
# behind the transfer it sweeps, its gas cannot be estimated before that transfer is mined.
SWEEP_GAS = 1_000_000
# The dev accounts anvil funds from its default mnemonic: one deploys (the vault's admin), the
# other plays a user's wallet in ``deposit``.
ADMIN, DEPOSITOR = 0, 1
# How long the CLI waits for its sweep to be mined: a few of the devnet's blocks.
RECEIPT_TIMEOUT_S = 30


class DevnetError(RuntimeError):
    """The devnet is not there (never started, or not running now) or refused a transaction."""


@dataclass(frozen=True, slots=True)
class DevChain:
    """One chain as ``contracts.json`` records it."""

    chain_id: int
    rpc_url: str
    vault: str
    usdt: str
    usdt_decimals: int
    start_block: int


@dataclass
class Devnet:
    """The running chains, and what the app must be told about them."""

    chains: dict[str, DevChain]
    operator_key_file: Path
    nodes: list[Anvil] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The ``CHAINS_`` settings that point the app at these chains."""
        env = {
            "CHAINS_OPERATOR_KEY_FILE": str(self.operator_key_file),
            "CHAINS_POLL_SECONDS": str(POLL_SECONDS),
        }
        for name, chain in self.chains.items():
            prefix = f"CHAINS_EVM__{name.upper()}__"
            env |= {
                f"{prefix}RPC_URL": chain.rpc_url,
                f"{prefix}VAULT": chain.vault,
                f"{prefix}USDT": chain.usdt,
                f"{prefix}USDT_DECIMALS": str(chain.usdt_decimals),
                f"{prefix}START_BLOCK": str(chain.start_block),
                f"{prefix}CONFIRMATIONS": str(CONFIRMATIONS),
            }
        return env

    def stop(self) -> None:
        """Stops the nodes, each writing its state file as it exits."""
        for node in self.nodes:
            node.stop()
        self.nodes.clear()


def wanted(settings: Settings) -> bool:
    """The embedded demo, outside production, with ``CHAINS_DEVNET`` on and no chain of the
    user's own configured."""
    return (
        settings.chains.devnet
        and settings.embedded
        and settings.app.env is not Environment.PRODUCTION
        and not any(chain.rpc_url for chain in settings.chains.evm.values())
    )


def folder(data_dir: Path) -> Path:
    return data_dir / "devnet"


def start(data_dir: Path, *, block_time: int = BLOCK_TIME_S) -> Devnet:
    """Starts both chains, deploying where nothing (or something else) is deployed yet.

    Raises ``AnvilUnavailableError`` without anvil, ``DevnetError`` if a chain does not start.
    """
    binary = find_anvil()
    if binary is None:
        raise AnvilUnavailableError("anvil not found: run npm ci --prefix contracts/evm")
    home = folder(data_dir)
    devnet = Devnet({}, data_dir / "secrets" / "devnet_operator")
    try:
        home.mkdir(parents=True, exist_ok=True)
        operator = Account.from_key(_operator_key(devnet.operator_key_file)).address
        recorded = _recorded(home / "contracts.json")
        for name, (chain_id, decimals) in CHAINS.items():
            state = home / f"{name}.state.json"
            node = start_anvil(chain_id, binary=binary, state=state, block_time=block_time)
            devnet.nodes.append(node)
            w3 = Web3(HTTPProvider(node.url))
            known = recorded.get(name)
            if known is None or not _deployed(w3, known, operator):
                known = _deploy(w3, chain_id, decimals, operator)
            devnet.chains[name] = DevChain(**{**asdict(known), "rpc_url": node.url})
        _record(home / "contracts.json", devnet.chains, operator)
    except (Web3Exception, OSError, ValueError, RuntimeError) as exc:
        devnet.stop()
        raise DevnetError(f"{exc} (deleting {home} starts them afresh)") from exc
    except BaseException:  # Ctrl-C while starting: leave no node behind
        devnet.stop()
        raise
    return devnet


def _operator_key(path: Path) -> str:
    """Made once with owner-only access; the vaults grant its address OPERATOR_ROLE."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = "0x" + bytes(Account.create().key).hex()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    return key


def _recorded(path: Path) -> dict[str, DevChain]:
    """What an earlier start deployed; nothing where the file is missing or unreadable."""
    try:
        chains = json.loads(path.read_text())["chains"]
        return {name: DevChain(**chains[name]) for name in CHAINS if name in chains}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _record(path: Path, chains: dict[str, DevChain], operator: str) -> None:
    data = {"operator": operator, "chains": {name: asdict(c) for name, c in chains.items()}}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


def _artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


def _contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=_artifact(name)["abi"])


def _deployed(w3: Web3, chain: DevChain, operator: str) -> bool:
    """The recorded contracts are on this chain, and the operator is still ours."""
    if w3.eth.chain_id != chain.chain_id:
        return False
    vault, usdt = (Web3.to_checksum_address(a) for a in (chain.vault, chain.usdt))
    if not w3.eth.get_code(vault) or not w3.eth.get_code(usdt):
        return False
    contract = _contract(w3, "Vault", vault)
    try:
        role = contract.functions.OPERATOR_ROLE().call()
        return bool(contract.functions.hasRole(role, operator).call())
    except Web3Exception:  # other code at that address
        return False


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    answer = w3.provider.make_request(RPCEndpoint(method), list(params))
    if "error" in answer:
        raise DevnetError(f"{method}: {answer['error']}")
    return answer.get("result")


def _deploy(w3: Web3, chain_id: int, decimals: int, operator: str) -> DevChain:
    admin: ChecksumAddress = w3.eth.accounts[ADMIN]
    sent = []
    for name, args in (("Vault", (admin, operator)), ("TestUSDT", (decimals,))):
        spec = _artifact(name)
        factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        sent.append(factory.constructor(*args).transact({"from": admin}))
    _rpc(w3, "anvil_setBalance", operator, hex(OPERATOR_FUNDS_WEI))
    _rpc(w3, "evm_mine")  # now, rather than at the next interval's block
    vault, usdt = (w3.eth.wait_for_transaction_receipt(tx) for tx in sent)
    if vault["contractAddress"] is None or usdt["contractAddress"] is None:
        raise DevnetError(f"deployment failed on chain {chain_id}")
    return DevChain(
        chain_id=chain_id,
        rpc_url="",
        vault=vault["contractAddress"],
        usdt=usdt["contractAddress"],
        usdt_decimals=decimals,
        start_block=vault["blockNumber"],
    )


@dataclass(frozen=True, slots=True)
class SentDeposit:
    address: str
    """The user's deposit address the funds went to."""
    tx_hash: str
    """The sweep that moved them into the vault (its ``Deposited`` log credits the user)."""
    block: int


def deposit(
    data_dir: Path,
    forwarder_artifact: Path,
    *,
    user_id: int,
    amount: Decimal,
    chain: str,
    asset: str,
) -> SentDeposit:
    """Sends ``amount`` of test USDT (minted) or of the native coin to the user's deposit
    address, as a wallet would, then sweeps it into the vault."""
    if not 0 < user_id <= MAX_USER_ID:
        raise DevnetError(f"no user id {user_id}")
    recorded = _recorded(folder(data_dir) / "contracts.json").get(chain)
    if recorded is None:
        raise DevnetError(
            "no devnet here: `simplrefq serve` starts one with the embedded demo "
            f"(APP_DATA_DIR={data_dir})"
        )
    w3 = Web3(HTTPProvider(recorded.rpc_url))
    if not w3.is_connected():
        raise DevnetError(f"the devnet is not running ({recorded.rpc_url}): start simplrefq serve")
    decimals = recorded.usdt_decimals if asset == "USDT" else 18
    raw = amount.scaleb(decimals)
    if amount <= 0 or raw != raw.to_integral_value():
        raise DevnetError(f"{amount} is not a positive amount of at most {decimals} decimals")
    vault = _contract(w3, "Vault", recorded.vault)
    usdt = _contract(w3, "TestUSDT", recorded.usdt)
    target = deposit_address(vault.address, user_id, forwarder_creation_code(forwarder_artifact))
    sender: ChecksumAddress = w3.eth.accounts[DEPOSITOR]
    try:
        if asset == "USDT":
            usdt.functions.mint(target, int(raw)).transact({"from": sender})
            tokens = [usdt.address]
        else:
            w3.eth.send_transaction({"from": sender, "to": target, "value": Wei(int(raw))})
            tokens = []
        sweep = vault.functions.sweep(chain_user_id(user_id), tokens).transact(
            {"from": sender, "gas": SWEEP_GAS}
        )
        receipt = w3.eth.wait_for_transaction_receipt(sweep, timeout=RECEIPT_TIMEOUT_S)
    except Web3Exception as exc:
        raise DevnetError(f"the devnet refused the deposit: {exc}") from exc
    if receipt["status"] != 1:
        raise DevnetError(f"the sweep reverted (tx {receipt['transactionHash'].to_0x_hex()})")
    return SentDeposit(target, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"])
