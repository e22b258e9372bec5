"""``simplrefq chains reconcile`` on the two real chains of ``test_chain_deposits`` (anvil as
Ethereum with 6-decimal USDT and as BNB Chain with 18), on SQLite and PostgreSQL.

What must hold: after credited deposits the ledger's custody and the vaults agree to the unit;
tokens taken out of a vault are a shortfall, shown and failing; tokens sent into a vault without
a deposit (or dust below the ledger's precision) are a surplus, shown and not failing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from backend import cli
from backend.chains.reconcile import CustodyRow, reconcile
from backend.chains.rpc import RpcError
from backend.config import ChainsSettings
from backend.db.engine import Database
from tests.helpers import make_settings
from tests.integration import test_chain_deposits as deposits
from tests.integration.test_chain_deposits import CONFIRMATIONS, Chain, Watchers, rpc
from tests.trading_helpers import Desks, make_users

# The anvils, the vaults on them, the databases and the watchers of the deposit tests.
_needs_anvil = deposits._needs_anvil
anvils = deposits.anvils
chains = deposits.chains
db = deposits.db
desks = deposits.desks
watchers = deposits.watchers


def chain_settings(chains: dict[str, Chain]) -> ChainsSettings:
    return ChainsSettings(evm={name: chain.settings() for name, chain in chains.items()})


async def rows_of(db: Database, chains: dict[str, Chain]) -> dict[str, CustodyRow]:
    """Each chain's USDT row (native rows appear once the vault holds coin for gas)."""
    rows = await reconcile(db, chain_settings(chains))
    return {row.chain: row for row in rows if row.asset == "USDT"}


async def run_cli(
    db: Database, chains: dict[str, Chain], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Result:
    """The command itself, in a thread of its own (it runs its own event loop), on the test's
    database: the same SQLite file under ``tmp_path``, or the same PostgreSQL database."""
    env: dict[str, Any] = {"chains": {"evm": chain_settings(chains).evm}}
    url = db.engine.url.render_as_string(hide_password=False)
    if url.startswith("postgresql"):
        env["database"] = {"url": url}
    settings = make_settings(tmp_path, **env)
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    return await asyncio.to_thread(CliRunner().invoke, cli.main, ["chains", "reconcile"])


def usdt_lines(result: Result) -> dict[str, list[str]]:
    """The command's USDT lines by chain: [asset, ledger, on chain, difference, flag?]."""
    lines = [line.split() for line in result.stdout.splitlines()[1:]]
    return {words[0]: words[1:] for words in lines if words[1:2] == ["USDT"]}


async def credit(chains: dict[str, Chain], watchers: Watchers, user: int) -> None:
    """25 USDT into the Ethereum vault, 25 through the BNB deposit address, both credited."""
    chains["ethereum"].deposit(user, 25)
    chains["bnb"].deposit_to_forwarder(user, 25)
    for chain in chains.values():
        chain.mine(CONFIRMATIONS)
    assert await watchers.scan() == 2


def take_from_vault(chain: Chain, amount: int) -> None:
    """A transfer out of the vault that no withdrawal explains, signed as the vault itself."""
    vault = chain.vault.address
    rpc(chain.w3, "anvil_setBalance", vault, hex(10**18))  # gas for the impersonated vault
    rpc(chain.w3, "anvil_impersonateAccount", vault)
    try:
        tx = chain.usdt.functions.transfer(chain.sender, amount).transact({"from": vault})
        assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    finally:
        rpc(chain.w3, "anvil_stopImpersonatingAccount", vault)


def send_to_vault(chain: Chain, amount: int) -> None:
    """A plain ERC-20 transfer into the vault: tokens held, no ``Deposited`` event."""
    chain.send(chain.usdt.functions.mint(chain.sender, amount))
    chain.send(chain.usdt.functions.transfer(chain.vault.address, amount))


async def test_credited_deposits_reconcile_clean(
    desks: Desks,
    chains: dict[str, Chain],
    watchers: Watchers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    await credit(chains, watchers, user)
    rows = await rows_of(db, chains)
    assert rows == {
        "ethereum": CustodyRow("ethereum", "USDT", 25_000_000, 25_000_000),
        "bnb": CustodyRow("bnb", "USDT", 25_000_000, 25_000_000),
    }
    assert all(row.difference == 0 and not row.shortfall for row in rows.values())

    result = await run_cli(db, chains, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["chain", "asset", "ledger", "custody", "on", "chain", "difference"]
    assert sorted(line.split() for line in lines[1:]) == [
        ["bnb", "USDT", "25", "25", "0"],
        ["ethereum", "USDT", "25", "25", "0"],
    ]


async def test_tokens_taken_from_a_vault_are_a_shortfall(
    desks: Desks,
    chains: dict[str, Chain],
    watchers: Watchers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    await credit(chains, watchers, user)
    bnb = chains["bnb"]
    take_from_vault(bnb, 5 * 10**bnb.decimals)

    rows = await rows_of(db, chains)
    assert rows["bnb"] == CustodyRow("bnb", "USDT", 25_000_000, 20_000_000)
    assert rows["bnb"].difference == -5_000_000 and rows["bnb"].shortfall
    assert rows["ethereum"].difference == 0

    result = await run_cli(db, chains, tmp_path, monkeypatch)
    assert result.exit_code == 1, result.output
    shown = usdt_lines(result)
    assert shown["bnb"] == ["USDT", "25", "20", "-5", "SHORTFALL"]
    assert shown["ethereum"] == ["USDT", "25", "25", "0"]
    assert "shortfall" in result.stderr


async def test_tokens_sent_into_a_vault_are_a_surplus(
    desks: Desks,
    chains: dict[str, Chain],
    watchers: Watchers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    await credit(chains, watchers, user)
    eth, bnb = chains["ethereum"], chains["bnb"]
    send_to_vault(eth, 3 * 10**eth.decimals)
    send_to_vault(bnb, 123)  # dust: below the ledger's 6 places of an 18-decimal token
    # A deposit still short of its confirmations is on chain and not yet in the ledger.
    eth.deposit(user, 2)
    assert await watchers.scan() == 0

    rows = await rows_of(db, chains)
    assert rows["ethereum"] == CustodyRow("ethereum", "USDT", 25_000_000, 30_000_000)
    assert rows["ethereum"].difference == 5_000_000 and not rows["ethereum"].shortfall
    assert rows["bnb"].difference == 0

    result = await run_cli(db, chains, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    shown = usdt_lines(result)
    assert shown["ethereum"] == ["USDT", "25", "30", "+5"]
    assert shown["bnb"] == ["USDT", "25", "25", "0"]


async def test_no_configured_chain_and_a_node_that_is_down(
    db: Database, chains: dict[str, Chain]
) -> None:
    assert await reconcile(db, ChainsSettings()) == []  # no RPC URL or vault: not reconciled
    down = chain_settings(chains)
    down.evm["ethereum"] = down.evm["ethereum"].model_copy(update={"rpc_url": "http://127.0.0.1:9"})
    with pytest.raises(RpcError):
        await reconcile(db, down)


async def test_native_deposits_reconcile_clean(
    desks: Desks,
    chains: dict[str, Chain],
    watchers: Watchers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ETH and BNB custody against the vaults' native balances (``eth_getBalance``)."""
    db = desks.db
    (user,) = await make_users(db, 1)
    await credit(chains, watchers, user)
    deposits.deposit_native(chains["ethereum"], user, 15 * 10**17 + 7)  # the wei stay as dust
    deposits.deposit_native_to_forwarder(chains["bnb"], user, 2 * 10**18)
    for chain in chains.values():
        chain.mine(CONFIRMATIONS)
    assert await watchers.scan() == 2

    rows = {(row.chain, row.asset): row for row in await reconcile(db, chain_settings(chains))}
    assert rows == {
        ("ethereum", "ETH"): CustodyRow("ethereum", "ETH", 1_500_000_000, 1_500_000_000),
        ("ethereum", "USDT"): CustodyRow("ethereum", "USDT", 25_000_000, 25_000_000),
        ("bnb", "BNB"): CustodyRow("bnb", "BNB", 2_000_000_000, 2_000_000_000),
        ("bnb", "USDT"): CustodyRow("bnb", "USDT", 25_000_000, 25_000_000),
    }
    result = await run_cli(db, chains, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert sorted(line.split() for line in result.stdout.splitlines()[1:]) == [
        ["bnb", "BNB", "2", "2", "0"],
        ["bnb", "USDT", "25", "25", "0"],
        ["ethereum", "ETH", "1.5", "1.5", "0"],
        ["ethereum", "USDT", "25", "25", "0"],
    ]
