"""Deposits on two real chains: anvil as Ethereum (chain id 1, USDT with 6 decimals) and as BNB
Chain (56, USDT with 18), the compiled vault deployed on each, a real ``Trading`` crediting
through its writers, on SQLite and PostgreSQL.

What must hold: nothing is credited before N confirmations; the same USDT on either chain lands
in the one USDT balance, scaled; a deposit whose block is reorged away is never credited, and
nothing is credited twice, across reorgs, restarts and a crash between crediting and marking;
the custody accounts mirror what the vaults took; the ledger verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_typing import ChecksumAddress
from sqlmodel import col, select
from web3 import Web3
from web3.contract import Contract

from backend.chains.deposit_models import ChainCursor, ChainDeposit, DepositStatus
from backend.chains.deposit_queries import ChainDeposits
from backend.chains.deposits import DepositWatcher, watch_chains
from backend.chains.evm import (
    chain_user_id,
    deposit_address,
    forwarder_creation_code,
    internal_user_id,
    to_ledger_units,
)
from backend.chains.rpc import EvmRpc
from backend.config import ChainsSettings, EvmChainSettings
from backend.db.engine import Database
from backend.ledger.domain import system_account
from backend.ledger.verify import verify
from backend.testing.anvil import find_anvil
from tests.chain_helpers import FORWARDER, Node, deploy_contract, rpc, running_nodes
from tests.helpers import BACKENDS, open_database, require
from tests.helpers import counters as accounts
from tests.trading_helpers import Desks, balance_of, make_users, posted, running

CHAINS = {"ethereum": (1, 6), "bnb": (56, 18)}
CONFIRMATIONS = 3


@pytest.fixture(autouse=True)
def _needs_anvil() -> None:
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")


@pytest.fixture(scope="module")
def anvils() -> Iterator[dict[str, Node]]:
    with running_nodes({name: chain_id for name, (chain_id, _) in CHAINS.items()}) as nodes:
        yield nodes


@dataclass
class Chain:
    name: str
    w3: Web3
    url: str
    vault: Contract
    usdt: Contract
    decimals: int
    sender: ChecksumAddress

    def send(self, call: Any) -> None:
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": self.sender}))
        assert receipt["status"] == 1

    def deposit(self, user_id: int, whole: int) -> None:
        """Straight into the vault: approve, then ``depositToken``."""
        amount = whole * 10**self.decimals
        self.send(self.usdt.functions.mint(self.sender, amount))
        self.send(self.usdt.functions.approve(self.vault.address, amount))
        self.send(
            self.vault.functions.depositToken(chain_user_id(user_id), self.usdt.address, amount)
        )

    def deposit_to_forwarder(self, user_id: int, whole: int) -> None:
        """Tokens sent to the user's deposit address, then swept into the vault."""
        address = deposit_address(self.vault.address, user_id, forwarder_creation_code(FORWARDER))
        self.send(self.usdt.functions.mint(address, whole * 10**self.decimals))
        self.send(self.vault.functions.sweep(chain_user_id(user_id), [self.usdt.address]))

    def mine(self, blocks: int) -> None:
        rpc(self.w3, "anvil_mine", hex(blocks))

    def settings(self) -> EvmChainSettings:
        return EvmChainSettings(
            chain_id=CHAINS[self.name][0],
            rpc_url=self.url,
            vault=self.vault.address,
            usdt=self.usdt.address,
            usdt_decimals=self.decimals,
            confirmations=CONFIRMATIONS,
        )


def deploy(anvils: dict[str, Node], name: str) -> Chain:
    node = anvils[name]
    w3 = node.fresh()
    people: list[ChecksumAddress] = list(w3.eth.accounts)  # typed as a 1-tuple by web3
    admin, operator, sender = people[0], people[1], people[2]

    decimals = CHAINS[name][1]
    vault = deploy_contract(w3, "Vault", admin, admin, operator)
    usdt = deploy_contract(w3, "TestUSDT", admin, decimals)
    return Chain(name, w3, node.url, vault, usdt, decimals, sender)


@pytest.fixture
def chains(anvils: dict[str, Node]) -> dict[str, Chain]:
    return {name: deploy(anvils, name) for name in CHAINS}


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with AsyncExitStack() as stack:
        yield await open_database(stack, request.param, tmp_path)


class Watchers:
    """A watcher per chain on a running ``Trading``, each with its own node client."""

    def __init__(self, desks: Desks, chains: dict[str, Chain]) -> None:
        self.desks = desks
        self.by_chain = {
            name: DepositWatcher(
                desks.db,
                desks.ledger,
                desks.trading,
                name,
                chain.settings(),
                EvmRpc(chain.url),
                max_blocks=4,  # several ranges per pass, as on a real chain after a pause
            )
            for name, chain in chains.items()
        }

    async def scan(self) -> int:
        return sum([await watcher.scan() for watcher in self.by_chain.values()])

    async def close(self) -> None:
        for watcher in self.by_chain.values():
            await watcher.rpc.close()


@pytest.fixture
async def desks(db: Database) -> AsyncIterator[Desks]:
    async with running(db) as started:
        yield started


@pytest.fixture
async def watchers(desks: Desks, chains: dict[str, Chain]) -> AsyncIterator[Watchers]:
    started = Watchers(desks, chains)
    yield started
    await started.close()


async def deposits(db: Database) -> list[ChainDeposit]:
    async with db.reads() as session:
        query = select(ChainDeposit).order_by(col(ChainDeposit.id))
        return list((await session.exec(query)).all())


async def custody(db: Database, chain: str) -> int:
    return posted((await accounts(db)).get(system_account(f"custody_{chain}", "USDT")))


async def assert_clean(db: Database) -> None:
    report = await verify(db)
    assert report.ok, report.problems


# --- pure rules -----------------------------------------------------------------------------


def test_user_ids_and_amounts() -> None:
    assert chain_user_id(42) == bytes(31) + b"\x2a"
    assert internal_user_id(chain_user_id(42)) == 42
    assert internal_user_id(bytes(32)) is None
    assert internal_user_id(b"\xff" * 32) is None
    assert internal_user_id(chain_user_id(2**40)) is None  # users.id is a 32-bit integer
    assert to_ledger_units(25 * 10**18 + 123, 18, 6) == 25_000_000  # the dust stays on chain
    assert to_ledger_units(25 * 10**6, 6, 6) == 25_000_000


# --- on the chains ----------------------------------------------------------------------------


async def test_credited_only_after_confirmations_into_one_balance(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    """25 USDT straight into the Ethereum vault, 25 USDT sent to the BNB deposit address and
    swept: one balance of 50 USDT, once each deposit has N confirmations."""
    db = desks.db
    (user,) = await make_users(db, 1)
    eth, bnb = chains["ethereum"], chains["bnb"]
    code = forwarder_creation_code(FORWARDER)
    for chain in (eth, bnb):
        predicted = deposit_address(chain.vault.address, user, code)
        assert chain.vault.functions.forwarderAddress(chain_user_id(user)).call() == predicted
    eth.deposit(user, 25)
    bnb.deposit_to_forwarder(user, 25)

    # The deposit's own block is its first confirmation.
    for _ in range(CONFIRMATIONS - 1):
        assert await watchers.scan() == 0
        assert await balance_of(db, user, "USDT") == 0
        assert {d.status for d in await deposits(db)} == {DepositStatus.SEEN.value}
        eth.mine(1)
        bnb.mine(1)
    assert await watchers.scan() == 2
    assert await balance_of(db, user, "USDT") == 50_000_000
    assert await custody(db, "ethereum") == -25_000_000
    assert await custody(db, "bnb") == -25_000_000
    assert desks.trading.available(user, "USDT") in (None, 50_000_000)

    # Scanning again credits nothing; the user's list shows the confirmations.
    eth.mine(2)
    assert await watchers.scan() == 0
    async with db.reads() as session:
        listed = await ChainDeposits(ChainsSettings()).deposits(session, user)
    assert sorted((d.chain, d.amount, d.status) for d in listed) == [
        ("bnb", "25", "credited"),
        ("ethereum", "25", "credited"),
    ]
    assert {d.chain: d.confirmations for d in listed}["ethereum"] == CONFIRMATIONS + 2
    assert await balance_of(db, user, "USDT") == 50_000_000
    await assert_clean(db)


async def test_a_reorg_before_confirmation_never_credits(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    """Seen in a block that leaves the chain: dropped, never credited; the same transaction
    mined again later is credited once."""
    db = desks.db
    (user,) = await make_users(db, 1)
    eth = chains["ethereum"]
    watcher = watchers.by_chain["ethereum"]
    assert await watcher.scan() == 0  # the cursor is past the deployment
    fork = str(rpc(eth.w3, "evm_snapshot"))
    eth.deposit(user, 10)
    eth.mine(1)
    assert await watcher.scan() == 0
    (seen,) = await deposits(db)
    assert seen.status == DepositStatus.SEEN.value

    assert rpc(eth.w3, "evm_revert", fork) is True
    eth.mine(CONFIRMATIONS + 3)  # a longer chain without the deposit
    assert await watcher.scan() == 0
    (dropped,) = await deposits(db)
    assert dropped.status == DepositStatus.DROPPED.value
    eth.mine(CONFIRMATIONS)
    assert await watcher.scan() == 0
    assert await balance_of(db, user, "USDT") == 0
    async with db.reads() as session:
        cursor = await session.get(ChainCursor, "ethereum")
    assert cursor is not None
    assert cursor.block_hash == str(eth.w3.eth.get_block("latest")["hash"].to_0x_hex())

    # The user sends it again on the new chain (a new transaction: its fees differ): that
    # one is credited, once; the dropped one stays dropped.
    eth.deposit(user, 10)
    eth.mine(CONFIRMATIONS)
    assert await watcher.scan() == 1
    assert await watcher.scan() == 0
    rows = await deposits(db)
    assert [r.status for r in rows] == [DepositStatus.DROPPED.value, DepositStatus.CREDITED.value]
    assert await balance_of(db, user, "USDT") == 10_000_000
    assert await custody(db, "ethereum") == -10_000_000
    await assert_clean(db)


async def test_a_reorg_found_at_crediting_time_drops_and_rescans(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    """The block hash is read again just before crediting: a stale one credits nothing."""
    db = desks.db
    (user,) = await make_users(db, 1)
    bnb = chains["bnb"]
    watcher = watchers.by_chain["bnb"]
    bnb.deposit(user, 7)
    assert await watcher.scan() == 0
    async with db.sessions() as session:  # as if seen in a block the chain no longer has
        (row,) = (await session.exec(select(ChainDeposit))).all()
        row.block_hash = "0x" + "ab" * 32
        session.add(row)
        await session.commit()
    bnb.mine(CONFIRMATIONS)
    assert await watcher.scan() == 0  # dropped, its block re-scanned from the rewound cursor
    assert await balance_of(db, user, "USDT") == 0
    assert await watcher.scan() == 1  # found again in its real block, credited
    assert await balance_of(db, user, "USDT") == 7_000_000
    await assert_clean(db)


async def test_a_restarted_watcher_resumes_and_credits_nothing_twice(
    db: Database, chains: dict[str, Chain]
) -> None:
    """A new process (new Trading, new watchers) goes on from the stored cursors; a crash
    between the credit and marking the row leaves a row the ledger already knows."""
    eth, bnb = chains["ethereum"], chains["bnb"]
    async with running(db) as desks:
        (user,) = await make_users(db, 1)
        first = Watchers(desks, chains)
        eth.deposit(user, 3)
        bnb.deposit(user, 4)
        eth.mine(CONFIRMATIONS)
        bnb.mine(CONFIRMATIONS)
        assert await first.scan() == 2
        await first.close()
    async with db.sessions() as session:  # the crash: credited, not yet marked
        (row, _) = (await session.exec(select(ChainDeposit).order_by(col(ChainDeposit.id)))).all()
        row.status = DepositStatus.SEEN.value
        session.add(row)
        await session.commit()
    async with db.reads() as session:
        before = {c.chain: c.block_number for c in await session.exec(select(ChainCursor))}
    assert before == {name: chain.w3.eth.block_number for name, chain in chains.items()}

    async with running(db) as desks:
        second = Watchers(desks, chains)
        assert await second.scan() == 1  # the crashed one, marked; its transfer not repeated
        assert await second.scan() == 0
        assert await balance_of(db, user, "USDT") == 7_000_000
        bnb.deposit_to_forwarder(user, 5)
        bnb.mine(CONFIRMATIONS)
        assert await second.scan() == 1
        await second.close()
    assert await balance_of(db, user, "USDT") == 12_000_000
    assert [d.status for d in await deposits(db)] == [DepositStatus.CREDITED.value] * 3
    assert await custody(db, "bnb") == -9_000_000
    await assert_clean(db)


async def test_unknown_users_and_small_deposits_are_kept_not_credited(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    db = desks.db
    eth = chains["ethereum"]
    eth.deposit(987_654_321, 5)  # no such user
    (user,) = await make_users(db, 1)
    eth.send(eth.usdt.functions.mint(eth.sender, 500_000))  # 0.5 USDT, below the minimum 1
    eth.send(eth.usdt.functions.approve(eth.vault.address, 500_000))
    eth.send(eth.vault.functions.depositToken(chain_user_id(user), eth.usdt.address, 500_000))
    eth.mine(CONFIRMATIONS)
    assert await watchers.scan() == 0
    assert [(d.user_id, d.status) for d in await deposits(db)] == [
        (None, DepositStatus.UNKNOWN_USER.value),
        (user, DepositStatus.BELOW_MINIMUM.value),
    ]
    assert await custody(db, "ethereum") == 0
    await assert_clean(db)


async def test_the_watch_loop_outlives_a_node_that_is_down(
    desks: Desks, chains: dict[str, Chain]
) -> None:
    settings = chains["ethereum"].settings().model_copy(update={"rpc_url": "http://127.0.0.1:9"})
    rpc_client = EvmRpc(settings.rpc_url)
    watcher = DepositWatcher(
        desks.db, desks.ledger, desks.trading, "ethereum", settings, rpc_client
    )
    task = asyncio.create_task(watcher.run(0.01))
    await asyncio.sleep(0.2)
    assert not task.done()  # failed passes are logged and retried
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await rpc_client.close()


async def test_watch_chains_credits_on_both_chains_until_cancelled(
    desks: Desks, chains: dict[str, Chain]
) -> None:
    """The entry point the app runs where the books run: every configured chain watched."""
    db = desks.db
    (user,) = await make_users(db, 1)
    settings = ChainsSettings(
        evm={name: chain.settings() for name, chain in chains.items()}, poll_seconds=0.05
    )
    task = asyncio.create_task(watch_chains(db, desks.ledger, desks.trading, settings))
    try:
        chains["ethereum"].deposit(user, 2)
        chains["bnb"].deposit_to_forwarder(user, 3)
        for chain in chains.values():
            chain.mine(CONFIRMATIONS)
        for _ in range(200):
            if await balance_of(db, user, "USDT") == 5_000_000:
                break
            await asyncio.sleep(0.05)
        assert await balance_of(db, user, "USDT") == 5_000_000
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await assert_clean(db)


# --- native coin --------------------------------------------------------------------------------

NATIVE_ASSETS = {"ethereum": "ETH", "bnb": "BNB"}


def deposit_native(chain: Chain, user_id: int, wei: int) -> None:
    """Native coin straight into the vault: ``deposit{value}``."""
    tx = chain.vault.functions.deposit(chain_user_id(user_id)).transact(
        {"from": chain.sender, "value": wei}
    )
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def deposit_native_to_forwarder(chain: Chain, user_id: int, wei: int) -> None:
    """Native coin sent to the user's deposit address (a plain transfer), then swept."""
    address = deposit_address(chain.vault.address, user_id, forwarder_creation_code(FORWARDER))
    tx = chain.w3.eth.send_transaction({"from": chain.sender, "to": address, "value": wei})
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    chain.send(chain.vault.functions.sweep(chain_user_id(user_id), []))


async def native_custody(db: Database, chain: str) -> int:
    asset = NATIVE_ASSETS[chain]
    return posted((await accounts(db)).get(system_account(f"custody_{chain}", asset)))


async def test_native_deposits_credited_after_confirmations_into_eth_and_bnb(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    """1.5 ETH (and 7 wei of dust) into the Ethereum vault, 2.25 BNB (and dust) into the BNB
    one: credited as ETH and BNB in gwei, rounded down, once they have N confirmations."""
    db = desks.db
    (user,) = await make_users(db, 1)
    eth, bnb = chains["ethereum"], chains["bnb"]
    deposit_native(eth, user, 15 * 10**17 + 7)
    deposit_native(bnb, user, 225 * 10**16 + 999_999_999)  # under a gwei: stays on chain

    for _ in range(CONFIRMATIONS - 1):
        assert await watchers.scan() == 0
        assert await balance_of(db, user, "ETH") == 0
        assert await balance_of(db, user, "BNB") == 0
        eth.mine(1)
        bnb.mine(1)
    assert await watchers.scan() == 2
    assert await balance_of(db, user, "ETH") == 1_500_000_000
    assert await balance_of(db, user, "BNB") == 2_250_000_000
    assert await balance_of(db, user, "USDT") == 0
    assert await native_custody(db, "ethereum") == -1_500_000_000
    assert await native_custody(db, "bnb") == -2_250_000_000
    assert sorted((d.chain, d.asset, d.status) for d in await deposits(db)) == [
        ("bnb", "BNB", DepositStatus.CREDITED.value),
        ("ethereum", "ETH", DepositStatus.CREDITED.value),
    ]

    eth.mine(2)
    bnb.mine(2)
    assert await watchers.scan() == 0  # nothing twice
    assert await balance_of(db, user, "ETH") == 1_500_000_000
    await assert_clean(db)


async def test_native_coin_sent_to_the_deposit_address_is_swept_and_credited(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    eth, bnb = chains["ethereum"], chains["bnb"]
    deposit_native_to_forwarder(eth, user, 2 * 10**17)
    deposit_native_to_forwarder(bnb, user, 3 * 10**17)
    eth.mine(CONFIRMATIONS - 2)
    bnb.mine(CONFIRMATIONS - 2)
    assert await watchers.scan() == 0  # one confirmation short
    eth.mine(1)
    bnb.mine(1)
    assert await watchers.scan() == 2
    assert await balance_of(db, user, "ETH") == 200_000_000
    assert await balance_of(db, user, "BNB") == 300_000_000
    assert await native_custody(db, "bnb") == -300_000_000
    await assert_clean(db)


async def test_native_deposits_below_their_minimum_are_kept_not_credited(
    desks: Desks, chains: dict[str, Chain], watchers: Watchers
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    eth = chains["ethereum"]
    deposit_native(eth, user, 10**14)  # 0.0001 ETH, under the 0.001 minimum
    eth.mine(CONFIRMATIONS)
    assert await watchers.scan() == 0
    (row,) = await deposits(db)
    assert (row.asset, row.amount, row.status) == ("ETH", 100_000, "below_minimum")
    assert await balance_of(db, user, "ETH") == 0
