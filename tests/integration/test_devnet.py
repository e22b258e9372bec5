"""The embedded demo's chains (backend/chains/devnet.py): two real anvils with the vault and a
test USDT deployed, kept across restarts under APP_DATA_DIR, the settings the app is given, the
`simplrefq devnet deposit` command, and `simplrefq serve` starting and stopping them."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.chains import devnet
from backend.chains.anvil import find_anvil
from backend.chains.evm import DEPOSITED_TOPIC, NATIVE, decode_deposit, internal_user_id
from backend.cli import main
from backend.config import (
    ROOT,
    AppSettings,
    ChainsSettings,
    DatabaseSettings,
    Environment,
    RedisSettings,
    Settings,
)
from tests.helpers import require

ARTIFACTS = ROOT / "contracts" / "evm" / "artifacts"
# One block a second: a deposit's sweep waits for one, the demo's two seconds would double it.
BLOCK_TIME = 1


@pytest.fixture(autouse=True)
def _needs_anvil() -> None:
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[devnet.Devnet]:
    started = devnet.start(tmp_path, block_time=BLOCK_TIME)
    try:
        yield started
    finally:
        started.stop()


def contract(chain: devnet.DevChain, name: str, address: str) -> Contract:
    w3 = Web3(HTTPProvider(chain.rpc_url))
    abi = json.loads((ARTIFACTS / f"{name}.json").read_text())["abi"]
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


def operator_address(data_dir: Path) -> str:
    return str(Account.from_key((data_dir / "secrets" / "devnet_operator").read_text()).address)


def test_both_chains_answer_with_the_contracts_and_the_settings_name_them(
    tmp_path: Path, running: devnet.Devnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(running.chains) == {"ethereum", "bnb"}
    assert len(nodes_on(tmp_path)) == 2
    operator = operator_address(tmp_path)
    for name, (chain_id, decimals) in (("ethereum", (1, 6)), ("bnb", (56, 18))):
        chain = running.chains[name]
        w3 = Web3(HTTPProvider(chain.rpc_url))
        assert w3.eth.chain_id == chain_id
        assert w3.eth.get_code(Web3.to_checksum_address(chain.vault))
        usdt = contract(chain, "TestUSDT", chain.usdt)
        assert usdt.functions.decimals().call() == decimals == chain.usdt_decimals
        vault = contract(chain, "Vault", chain.vault)
        role = vault.functions.OPERATOR_ROLE().call()
        assert vault.functions.hasRole(role, operator).call()
        assert w3.eth.get_balance(Web3.to_checksum_address(operator)) == devnet.OPERATOR_FUNDS_WEI
        assert 0 < chain.start_block <= w3.eth.block_number

    key_file = tmp_path / "secrets" / "devnet_operator"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    recorded = json.loads((tmp_path / "devnet" / "contracts.json").read_text())
    assert recorded["operator"] == operator
    assert recorded["chains"]["bnb"]["vault"] == running.chains["bnb"].vault

    # The environment read by the app's own settings: the names are the ones it knows.
    for key, value in running.environment().items():
        monkeypatch.setenv(key, value)
    settings = ChainsSettings()
    assert settings.poll_seconds == devnet.POLL_SECONDS
    assert Account.from_key(settings.operator_secret()).address == operator
    for name, chain in running.chains.items():
        given = settings.evm[name]
        assert (given.chain_id, given.rpc_url) == (chain.chain_id, chain.rpc_url)
        assert (given.vault, given.usdt) == (chain.vault, chain.usdt)
        assert given.usdt_decimals == chain.usdt_decimals
        assert given.start_block == chain.start_block
        assert given.confirmations == devnet.CONFIRMATIONS


def test_a_restart_keeps_the_addresses_and_the_state(tmp_path: Path) -> None:
    first = devnet.start(tmp_path, block_time=BLOCK_TIME)
    try:
        chain = first.chains["bnb"]
        usdt = contract(chain, "TestUSDT", chain.usdt)
        holder = usdt.w3.eth.accounts[5]
        usdt.w3.eth.wait_for_transaction_receipt(
            usdt.functions.mint(holder, 7 * 10**18).transact({"from": holder})
        )
        height = usdt.w3.eth.block_number
    finally:
        first.stop()
    key = (tmp_path / "secrets" / "devnet_operator").read_text()

    second = devnet.start(tmp_path, block_time=BLOCK_TIME)
    try:
        for name, chain in second.chains.items():
            before = first.chains[name]
            assert (chain.vault, chain.usdt, chain.start_block) == (
                before.vault,
                before.usdt,
                before.start_block,
            )
        bnb = second.chains["bnb"]
        again = contract(bnb, "TestUSDT", bnb.usdt)
        assert again.functions.balanceOf(holder).call() == 7 * 10**18
        assert again.w3.eth.block_number >= height
    finally:
        second.stop()
    assert (tmp_path / "secrets" / "devnet_operator").read_text() == key


def test_a_chain_that_lost_its_state_is_deployed_again(tmp_path: Path) -> None:
    devnet.start(tmp_path, block_time=BLOCK_TIME).stop()
    (tmp_path / "devnet" / "ethereum.state.json").unlink()

    restarted = devnet.start(tmp_path, block_time=BLOCK_TIME)
    try:
        chain = restarted.chains["ethereum"]
        w3 = Web3(HTTPProvider(chain.rpc_url))
        assert w3.eth.get_code(Web3.to_checksum_address(chain.vault))
        assert contract(chain, "TestUSDT", chain.usdt).functions.decimals().call() == 6
        vault = contract(chain, "Vault", chain.vault)
        role = vault.functions.OPERATOR_ROLE().call()
        assert vault.functions.hasRole(role, operator_address(tmp_path)).call()
    finally:
        restarted.stop()


def test_a_chain_that_cannot_start_leaves_no_node_behind(tmp_path: Path) -> None:
    (tmp_path / "devnet").mkdir()
    (tmp_path / "devnet" / "bnb.state.json").write_text("not a state")
    with pytest.raises(devnet.DevnetError, match=r"deleting .*devnet starts them afresh"):
        devnet.start(tmp_path, block_time=BLOCK_TIME)
    assert nodes_on(tmp_path) == []


def nodes_on(data_dir: Path) -> list[str]:
    """The anvils whose command line names this data folder (Linux's /proc)."""
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "anvil" in command and str(data_dir) in command:
            found.append(command)
    return found


def deposits_of(chain: devnet.DevChain, tx_hash: str) -> list[Any]:
    w3 = Web3(HTTPProvider(chain.rpc_url))
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    return [
        decode_deposit(
            {
                "topics": [t.to_0x_hex() for t in log["topics"]],
                "transactionHash": log["transactionHash"].to_0x_hex(),
                "logIndex": hex(log["logIndex"]),
                "blockNumber": hex(log["blockNumber"]),
                "blockHash": log["blockHash"].to_0x_hex(),
                "data": log["data"].to_0x_hex(),
            }
        )
        for log in receipt["logs"]
        if log["address"] == chain.vault and log["topics"][0].to_0x_hex() == DEPOSITED_TOPIC
    ]


def run_cli(data_dir: Path, *args: str) -> Any:
    env = {"APP_DATA_DIR": str(data_dir), "APP_ENV": "test"}
    return CliRunner().invoke(main, ["devnet", "deposit", *args], env=env)


def tx_of(output: str) -> str:
    return output.split("(tx ", 1)[1].split(")", 1)[0]


def test_the_deposit_command_sweeps_into_the_vault_for_the_user(
    tmp_path: Path, running: devnet.Devnet
) -> None:
    done = run_cli(tmp_path, "--user-id", "42", "--amount", "25", "--chain", "bnb")
    assert done.exit_code == 0, done.output
    assert "25 USDT on bnb for user 42" in done.output
    bnb = running.chains["bnb"]
    [log] = deposits_of(bnb, tx_of(done.output))
    assert internal_user_id(log.user_id) == 42
    assert (log.token, log.amount) == (bnb.usdt, 25 * 10**18)

    native = run_cli(tmp_path, "--user-id", "42", "--amount", "0.5", "--asset", "native")
    assert native.exit_code == 0, native.output
    assert "0.5 ETH on ethereum" in native.output
    [log] = deposits_of(running.chains["ethereum"], tx_of(native.output))
    assert internal_user_id(log.user_id) == 42
    assert (log.token, log.amount) == (NATIVE, 5 * 10**17)

    finer = run_cli(tmp_path, "--user-id", "42", "--amount", "0.0000001")
    assert finer.exit_code == 1
    assert "at most 6 decimals" in finer.output


def test_the_deposit_command_says_when_there_is_no_devnet(tmp_path: Path) -> None:
    refused = run_cli(tmp_path, "--user-id", "1", "--amount", "-3")
    assert refused.exit_code == 2
    assert "'-3' is not a positive number" in refused.output

    never = run_cli(tmp_path, "--user-id", "1", "--amount", "5")
    assert never.exit_code == 1
    assert "no devnet here" in never.output

    devnet.start(tmp_path, block_time=BLOCK_TIME).stop()
    stopped = run_cli(tmp_path, "--user-id", "1", "--amount", "5")
    assert stopped.exit_code == 1
    assert "the devnet is not running" in stopped.output


def test_only_the_embedded_demo_outside_production_wants_it(tmp_path: Path) -> None:
    demo = Settings(
        app=AppSettings(data_dir=tmp_path),
        database=DatabaseSettings(url=""),
        redis=RedisSettings(url=""),
        chains=ChainsSettings(devnet=True),
    )
    assert devnet.wanted(demo)
    production = demo.model_copy(update={"app": AppSettings(env=Environment.PRODUCTION)})
    off = demo.model_copy(update={"chains": ChainsSettings(devnet=False)})
    own = demo.model_copy(
        update={"chains": ChainsSettings(evm={"bnb": {"rpc_url": "http://node.example"}})}
    )
    assert not any(devnet.wanted(s) for s in (production, off, own))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_the_chains_and_the_app_credits_a_demo_deposit(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHAINS_", "DATABASE_", "REDIS_"))
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve"],
        env={
            **env,
            "APP_DATA_DIR": str(tmp_path),
            "APP_PORT": str(port),
            "SIGNALS_ENABLED": "false",
            "MARKET_FEED": "off",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        app = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        deadline = time.monotonic() + 60  # a loaded CI machine imports slowly
        while True:
            try:
                chains = {c["chain"]: c for c in app.get("/api/chains").json()}
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        signed = app.post("/api/auth/demo", json={}).json()
        app.headers["Authorization"] = f"Bearer {signed['token']}"
        user_id = signed["user"]["id"]

        sent = run_cli(tmp_path, "--user-id", str(user_id), "--amount", "25", "--chain", "bnb")
        assert sent.exit_code == 0, sent.output
        deadline = time.monotonic() + 30  # 3 confirmations of 2 s blocks, polled every second
        while (balance := usdt_of(app)) == "0":
            assert time.monotonic() < deadline, app.get("/api/deposits").json()
            time.sleep(0.5)
        assert balance == "25"
        [credited] = app.get("/api/deposits").json()
        assert (credited["chain"], credited["status"]) == ("bnb", "credited")
        assert credited["tx_hash"] == tx_of(sent.output)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)

    recorded = json.loads((tmp_path / "devnet" / "contracts.json").read_text())["chains"]
    assert "local chains: ethereum (chain 1) at http://127.0.0.1:" in stderr
    for name in ("ethereum", "bnb"):
        assert chains[name]["open"] is True
        assert chains[name]["vault"] == recorded[name]["vault"]
        assert chains[name]["confirmations"] == devnet.CONFIRMATIONS
        # Stopped with the server, its state written as it exited.
        assert not Web3(HTTPProvider(recorded[name]["rpc_url"])).is_connected()
        assert (tmp_path / "devnet" / f"{name}.state.json").stat().st_size > 0


def usdt_of(app: httpx.Client) -> str:
    balances = {b["asset"]: b["total"] for b in app.get("/api/balances").json()}
    return str(balances["USDT"])
