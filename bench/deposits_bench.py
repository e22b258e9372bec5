"""On-chain deposits: a burst of deposit transactions on anvil, credited by the deposit watcher.

Starts anvil as BNB Chain (chain id 56, USDT with 18 decimals) or Ethereum (1, USDT with 6),
deploys the compiled Vault and TestUSDT, opens a database (SQLite in a temporary folder, or a
scratch PostgreSQL database), migrates it, makes --users users, each with a wallet of their own
(gas, USDT minted and approved to the vault), and runs a real ``Trading`` and a
``DepositWatcher`` (``run(--poll-seconds)``, with the in-process hub, as ``watch_chains`` runs
it) in this process.  Then, with anvil's automine off,
a producer thread mines one block every --block-seconds: the first blocks carry --per-block
deposit transactions each (USDT ``depositToken`` and native ``deposit{value}``, mixed, signed
beforehand by the users' wallets and sent as one JSON-RPC batch of ``eth_sendRawTransaction``
just before the block is mined); the blocks after them are empty and confirm them.

    .venv/bin/python bench/deposits_bench.py [--deposits 1000] [--users 100] [--per-block 100]
        [--block-seconds 0.25] [--confirmations N] [--poll-seconds 0.1] [--native-share 0.25]
        [--chain bnb|ethereum] [--db sqlite|postgres] [--timeout 300]

A deposit's inclusion is the moment ``evm_mine`` of its block returned, its Nth confirmation
that of block + N - 1, its credit the ``credited_at`` the watcher stamps after the ledger
transfer committed.  Prints deposits credited per second and the latency from inclusion and from
the Nth confirmation to the credit (target: under 1 s after the Nth confirmation), and what
the watcher's RPC calls cost.  Checked while it runs and at the end (exit status 1 on a break):
no deposit credited before its Nth confirmation block was mined; every deposit credited exactly
once (one row, one ledger transfer of its derived id); each transaction's receipt in the block
the watcher recorded; each user's balance the sum of their deposits in ledger units; the custody
accounts ``sys:custody_<chain>:<asset>`` minus the totals; the funds mirror agreeing; ``verify``
clean; no warning or error logged by the watcher.  Its info lines (one per credit) are
dropped, not printed.  --confirmations defaults to the chain's setting (15 on BNB Chain, 12 on
Ethereum).

Needs anvil (``npm ci --prefix contracts/evm``), and PostgreSQL on loopback for --db postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from eth_account import Account
from eth_utils.crypto import keccak
from sqlalchemy import text
from sqlmodel import col, select
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.auth.signin import sign_in
from backend.chains.deposit_models import ChainCursor, ChainDeposit, DepositStatus
from backend.chains.deposits import DepositWatcher, custody_source, deposit_transfer_id
from backend.chains.evm import NATIVE_DECIMALS, chain_user_id, to_ledger_units
from backend.chains.rpc import EvmRpc
from backend.config import ChainsSettings, EvmChainSettings, Settings, TradingSettings
from backend.db.engine import Database
from backend.db.migrate import upgrade_async
from backend.db.uow import unit_of_work
from backend.hub.backends.memory import MemoryBackend
from backend.hub.hub import Hub
from backend.ledger.assets import ASSETS
from backend.ledger.queries import balances, system_balance
from backend.ledger.service import Ledger
from backend.ledger.verify import verify
from backend.signals.report import text_table
from backend.testing.anvil import start_anvil
from backend.testing.scratch import create_database, drop_database
from backend.testing.stats import percentile
from backend.trading.service import Trading
from backend.users.service import TelegramProfile

ARTIFACTS = Path(__file__).resolve().parent.parent / "contracts" / "evm" / "artifacts"
CHAINS = {"bnb": (56, 18), "ethereum": (1, 6)}  # name: (chain id, USDT decimals)
TARGET_S = 1.0  # the issue's: credited under 1 s after the Nth confirmation
FIRST_TELEGRAM_ID = 60_000_000
# Fees well above anvil's base fee (1 gwei at start, +12.5% a full block at most): no deposit
# waits in the pool for a cheaper block.
MAX_FEE = 100 * 10**9
TIP = 10**9
# What a user's wallet starts with: gas and native deposits for any burst size here.
WALLET_WEI = 10**24
# The monitor reads the deposits table this often: often enough to catch an early credit in
# the act, seldom enough not to compete with the watcher for the database.
MONITOR_SECONDS = 0.5
LOGGED: list[str] = []


def keep_problems(_logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """Keeps the warnings and errors logged while running (none is expected) and drops the
    rest: one info line per credit would put a thousand lines between the figures."""
    if method in ("warning", "error", "critical", "exception"):
        LOGGED.append(f"{method}: {event}")
    raise structlog.DropEvent


# --- the chain -----------------------------------------------------------------------------------


def rpc_batch(client: httpx.Client, url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """One JSON-RPC batch; the results in the order of the calls, or RuntimeError."""
    body = [
        {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
        for n, (method, params) in enumerate(calls)
    ]
    answers = sorted(client.post(url, json=body).json(), key=lambda answer: answer["id"])
    errors = [answer["error"] for answer in answers if answer.get("error")]
    if errors or len(answers) != len(calls):
        raise RuntimeError(f"{calls[0][0]}: {errors[:3]} ({len(answers)} of {len(calls)})")
    return [answer["result"] for answer in answers]


def rpc(client: httpx.Client, url: str, method: str, *params: Any) -> Any:
    return rpc_batch(client, url, [(method, list(params))])[0]


@dataclass
class Chain:
    url: str
    chain_id: int
    decimals: int
    vault: Contract
    usdt: Contract
    start_block: int


def deploy(url: str, name: str) -> Chain:
    """The vault and the token, deployed by anvil's first (unlocked) account; automine off
    afterwards, so that blocks come only when the producer mines them."""
    chain_id, decimals = CHAINS[name]
    w3 = Web3(HTTPProvider(url))
    admin, operator = list(w3.eth.accounts)[:2]  # typed as a 1-tuple by web3

    def contract(artifact: str, *args: Any) -> tuple[Contract, int]:
        spec = json.loads((ARTIFACTS / f"{artifact}.json").read_text())
        factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        sent = factory.constructor(*args).transact({"from": admin})
        receipt = w3.eth.wait_for_transaction_receipt(sent)
        assert receipt["status"] == 1 and receipt["contractAddress"] is not None
        found = w3.eth.contract(address=receipt["contractAddress"], abi=spec["abi"])
        return found, receipt["blockNumber"]

    vault, start = contract("Vault", admin, operator)
    usdt, _ = contract("TestUSDT", decimals)
    with httpx.Client(timeout=30) as client:
        rpc(client, url, "evm_setAutomine", False)
    return Chain(url, chain_id, decimals, vault, usdt, start)


@dataclass(frozen=True, slots=True)
class Planned:
    """One deposit of the burst: who sends what, and its signed transaction."""

    user_id: int
    asset: str
    raw_amount: int
    tx_hash: str
    raw_tx: str


def wallet(n: int) -> Any:
    """The nth user's wallet: a key of its own, the same every run."""
    return Account.from_key(keccak(text=f"deposits-bench-wallet-{n}"))


def signed(chain: Chain, key: Any, nonce: int, to: str, data: str, value: int, gas: int) -> Any:
    tx = {
        "chainId": chain.chain_id,
        "nonce": nonce,
        "to": to,
        "data": data,
        "value": value,
        "gas": gas,
        "maxFeePerGas": MAX_FEE,
        "maxPriorityFeePerGas": TIP,
        "type": 2,
    }
    return key.sign_transaction(tx)


def mine_all(client: httpx.Client, chain: Chain, hashes: list[str]) -> None:
    """Mines until every transaction has a receipt, and checks that none reverted."""
    for _ in range(10):
        rpc(client, chain.url, "evm_mine")
        receipts = rpc_batch(
            client, chain.url, [("eth_getTransactionReceipt", [h]) for h in hashes]
        )
        if all(receipts):
            if any(receipt["status"] != "0x1" for receipt in receipts):
                raise RuntimeError("a setup transaction reverted")
            return
    raise RuntimeError("setup transactions were not mined")


def prepare_burst(
    chain: Chain, users: list[int], count: int, native_share: float, native: str
) -> list[Planned]:
    """Funds each user's wallet (gas, the USDT it will deposit, the vault's allowance), then
    signs the burst: deposit n from user n mod users, USDT or native coin, random amounts
    with dust below the ledger's scale on the way."""
    rng = random.Random(15)
    kinds = [rng.random() < native_share for _ in range(count)]
    amounts = [
        rng.randint(10**15, 2 * 10**18)  # 0.001 to 2 of the native coin, in wei
        if is_native
        else rng.randint(10**chain.decimals, 5_000 * 10**chain.decimals)  # 1 to 5,000 USDT
        for is_native in kinds
    ]
    keys = [wallet(n) for n in range(len(users))]
    minted: Counter[int] = Counter()
    for n, (is_native, amount) in enumerate(zip(kinds, amounts, strict=True)):
        if not is_native:
            minted[n % len(users)] += amount
    vault, usdt = chain.vault.address, chain.usdt.address
    with httpx.Client(timeout=60) as client:
        balance = hex(WALLET_WEI)
        rpc_batch(client, chain.url, [("anvil_setBalance", [k.address, balance]) for k in keys])
        setup = []
        for n, key in enumerate(keys):
            mint = chain.usdt.encode_abi("mint", args=[key.address, minted[n]])
            approve = chain.usdt.encode_abi("approve", args=[vault, minted[n]])
            setup += [
                signed(chain, key, 0, usdt, mint, 0, 100_000),
                signed(chain, key, 1, usdt, approve, 0, 100_000),
            ]
        rpc_batch(
            client,
            chain.url,
            [("eth_sendRawTransaction", ["0x" + tx.raw_transaction.hex()]) for tx in setup],
        )
        mine_all(client, chain, ["0x" + tx.hash.hex() for tx in setup])
        # The costliest case of each call (the vault's first token balance), plus a margin.
        first = keys[0].address
        user_id = chain_user_id(users[0])
        token_call = chain.vault.encode_abi("depositToken", args=[user_id, usdt, 1])
        native_call = chain.vault.encode_abi("deposit", args=[user_id])
        gas_token, gas_native = (
            int(int(found, 16) * 1.25)
            for found in rpc_batch(
                client,
                chain.url,
                [
                    ("eth_estimateGas", [{"from": first, "to": vault, "data": token_call}]),
                    (
                        "eth_estimateGas",
                        [{"from": first, "to": vault, "data": native_call, "value": "0x1"}],
                    ),
                ],
            )
        )
    nonces = [2] * len(users)
    burst = []
    for n, (is_native, amount) in enumerate(zip(kinds, amounts, strict=True)):
        who = n % len(users)
        user_id = chain_user_id(users[who])
        if is_native:
            data = chain.vault.encode_abi("deposit", args=[user_id])
            tx = signed(chain, keys[who], nonces[who], vault, data, amount, gas_native)
        else:
            data = chain.vault.encode_abi("depositToken", args=[user_id, usdt, amount])
            tx = signed(chain, keys[who], nonces[who], vault, data, 0, gas_token)
        nonces[who] += 1
        burst.append(
            Planned(
                users[who],
                native if is_native else "USDT",
                amount,
                "0x" + tx.hash.hex(),
                "0x" + tx.raw_transaction.hex(),
            )
        )
    return burst


class Producer(threading.Thread):
    """Mines a block every ``block_seconds`` on a thread of its own, so that a busy event loop
    (the watcher's, the writers') neither holds a block back nor makes its time later; the
    first blocks carry the burst."""

    def __init__(self, url: str, batches: list[list[str]], block_seconds: float) -> None:
        super().__init__(name="block-producer", daemon=True)
        self.url = url
        self.batches = batches
        self.block_seconds = block_seconds
        self.mined: dict[int, tuple[float, float]] = {}
        """Block number: wall time (``time.time()``) before ``evm_mine`` was sent, and after
        it returned."""
        self.started_at = 0.0
        self.halt = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=30) as client:
                number = int(rpc(client, self.url, "eth_blockNumber"), 16)
                self.started_at = time.time()
                due = time.monotonic()
                for block in itertools.count():
                    if self.halt.is_set():
                        return
                    if block < len(self.batches):
                        sends = [("eth_sendRawTransaction", [raw]) for raw in self.batches[block]]
                        rpc_batch(client, self.url, sends)
                    before = time.time()
                    rpc(client, self.url, "evm_mine")
                    after = time.time()
                    number += 1
                    self.mined[number] = (before, after)
                    due += self.block_seconds
                    self.halt.wait(max(0.0, due - time.monotonic()))
        except Exception as exc:
            self.error = exc


class TimedRpc(EvmRpc):
    """The watcher's node client, counting each method's calls and the time they took."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    async def call(self, method: str, params: list[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await super().call(method, params)
        finally:
            self.calls[method] += 1
            self.seconds[method] += time.perf_counter() - started


# --- the database and the books --------------------------------------------------------------


@asynccontextmanager
async def database(kind: str, folder: Path) -> AsyncIterator[Database]:
    """A migrated database: SQLite under ``folder``, or a scratch PostgreSQL one (dropped)."""
    name = ""
    values: dict[str, Any] = {"app": {"env": "test", "data_dir": folder}}
    if kind == "postgres":
        name, url = await create_database()
        values["database"] = {"url": url}
    try:
        settings = Settings(**values, log={"level": "WARNING"})
        await upgrade_async(settings)
        db = Database.connect(settings)
        try:
            yield db
        finally:
            await db.dispose()
    finally:
        if name:
            await drop_database(name)


async def make_users(db: Database, count: int) -> list[int]:
    ids = []
    async with unit_of_work(db) as uow:
        for n in range(count):
            profile = TelegramProfile(FIRST_TELEGRAM_ID + n, f"depositor {n}")
            user = (await sign_in(uow, profile)).user
            assert user.id is not None
            ids.append(user.id)
    return ids


@asynccontextmanager
async def books(db: Database, ledger: Ledger) -> AsyncIterator[tuple[Trading, Hub]]:
    """A running ``Trading`` (no market maker) and its in-process hub, the writers owned here
    and cancelled after."""
    hub = Hub(MemoryBackend())
    await hub.start()
    trading = Trading(db, ledger, hub, TradingSettings(market_maker=False))
    tasks: set[asyncio.Task[None]] = set()
    await trading.start(lambda job, name: tasks.add(asyncio.create_task(job, name=name)))
    try:
        yield trading, hub
    finally:
        trading.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.close()


# --- watching the run ------------------------------------------------------------------------


@dataclass
class Row:
    tx_hash: str
    log_index: int
    user_id: int | None
    asset: str
    amount: int
    block_number: int
    block_hash: str
    status: str
    credited_at: float | None


async def deposit_rows(db: Database, chain: str) -> list[Row]:
    async with db.reads() as session:
        found = await session.exec(select(ChainDeposit).where(col(ChainDeposit.chain) == chain))
        return [
            Row(
                d.tx_hash,
                d.log_index,
                d.user_id,
                d.asset,
                d.amount,
                d.block_number,
                d.block_hash,
                d.status,
                None if d.credited_at is None else d.credited_at.timestamp(),
            )
            for d in found
        ]


async def custody(db: Database, chain: str, asset: str) -> int:
    async with db.reads() as session:
        return await system_balance(session, custody_source(chain), asset)


@dataclass
class Watch:
    """What the run is checked against, and the problems found so far."""

    db: Database
    chain: str
    deposits: int
    confirmations: int
    producer: Producer
    assets: tuple[str, str]
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
            print(f"  BROKEN: {problem}")

    def check_confirmed(self, row: Row) -> None:
        """Credited only once the block giving it N confirmations had been mined."""
        if row.credited_at is None:
            return
        nth = self.producer.mined.get(row.block_number + self.confirmations - 1)
        if nth is None or row.credited_at < nth[0]:
            self.fail(f"{row.tx_hash} credited before its confirmation {self.confirmations}")

    async def check(self) -> list[Row]:
        """The invariants that hold at any moment; returns the rows read."""
        rows = await deposit_rows(self.db, self.chain)
        statuses = Counter(row.status for row in rows)
        if len(rows) > self.deposits:
            self.fail(f"{len(rows)} deposit rows for {self.deposits} deposits")
        unexpected = set(statuses) - {DepositStatus.SEEN.value, DepositStatus.CREDITED.value}
        if unexpected:
            self.fail(f"deposits in states {sorted(unexpected)}: {dict(statuses)}")
        for row in rows:
            self.check_confirmed(row)
        # The ledger credit commits before the row is marked: custody may be ahead of the
        # marks, never behind them, and never beyond what was seen.
        for asset in self.assets:
            marked = sum(r.amount for r in rows if r.asset == asset and r.credited_at is not None)
            seen = sum(r.amount for r in rows if r.asset == asset)
            moved = -await custody(self.db, self.chain, asset)
            if not marked <= moved <= seen:
                self.fail(f"{asset} custody moved {moved}, credited rows {marked}, seen {seen}")
        return rows


async def wait_scanned(db: Database, chain: str, head: int, within: float) -> None:
    """Until the watcher's cursor reaches ``head`` (it has read the setup blocks)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with db.reads() as session:
            cursor = await session.get(ChainCursor, chain)
        if cursor is not None and cursor.block_number >= head:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the watcher did not reach the chain's head")


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    rows: list[Row]
    mined: dict[int, tuple[float, float]]
    started_at: float
    calls: Counter[str]
    rpc_seconds: defaultdict[str, float]
    problems: list[str]


async def run(args: argparse.Namespace) -> Outcome:
    structlog.configure(processors=[keep_problems])
    node = start_anvil(CHAINS[args.chain][0])
    try:
        chain = deploy(node.url, args.chain)
        with tempfile.TemporaryDirectory() as folder:
            async with database(args.db, Path(folder)) as db:
                return await burst_and_watch(args, chain, db)
    finally:
        node.stop()


async def burst_and_watch(args: argparse.Namespace, chain: Chain, db: Database) -> Outcome:
    settings = EvmChainSettings(
        chain_id=chain.chain_id,
        rpc_url=chain.url,
        vault=chain.vault.address,
        usdt=chain.usdt.address,
        usdt_decimals=chain.decimals,
        confirmations=args.confirmations,
        start_block=chain.start_block,
    )
    native = settings.native_asset
    users = await make_users(db, args.users)
    print(f"signing {args.deposits} deposits from {args.users} wallets ...")
    burst = prepare_burst(chain, users, args.deposits, args.native_share, native)
    raws = [planned.raw_tx for planned in burst]
    batches = [raws[n : n + args.per_block] for n in range(0, len(raws), args.per_block)]
    producer = Producer(chain.url, batches, args.block_seconds)
    watch = Watch(db, args.chain, args.deposits, args.confirmations, producer, ("USDT", native))
    ledger = Ledger()
    async with books(db, ledger) as (trading, hub):
        node_client = TimedRpc(chain.url)
        watcher = DepositWatcher(db, ledger, trading, args.chain, settings, node_client, hub=hub)
        watching = asyncio.create_task(watcher.run(args.poll_seconds), name="watcher")
        try:
            await wait_scanned(db, args.chain, await node_client.head(), within=30)
            node_client.calls.clear()
            node_client.seconds.clear()
            print(f"burst: {len(batches)} blocks of up to {args.per_block} deposits")
            producer.start()
            try:
                await follow(watch, args.timeout)
            finally:
                producer.halt.set()
                producer.join()
            if producer.error is not None:
                watch.fail(f"the block producer failed: {producer.error!r}")
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await node_client.close()
        rows = await watch.check()
        await final_checks(watch, chain, burst, rows, trading)
    return Outcome(
        rows,
        producer.mined,
        producer.started_at,
        node_client.calls,
        node_client.seconds,
        watch.problems,
    )


async def follow(watch: Watch, within: float) -> list[Row]:
    """Checks the invariants every MONITOR_SECONDS until every deposit is credited."""
    deadline = time.monotonic() + within
    while True:
        await asyncio.sleep(MONITOR_SECONDS)
        rows = await watch.check()
        credited = sum(row.status == DepositStatus.CREDITED.value for row in rows)
        if credited == watch.deposits or watch.producer.error is not None:
            return rows
        if time.monotonic() > deadline:
            watch.fail(f"only {credited} of {watch.deposits} credited in {within:.0f} s")
            return rows


async def final_checks(
    watch: Watch, chain: Chain, burst: list[Planned], rows: list[Row], trading: Trading
) -> None:
    db = watch.db
    names = Counter((row.tx_hash, row.log_index) for row in rows)
    if len(rows) != len(burst) or len(names) != len(burst):
        watch.fail(f"{len(rows)} rows, {len(names)} distinct logs, for {len(burst)} deposits")
    if {row.tx_hash for row in rows} != {planned.tx_hash for planned in burst}:
        watch.fail("the recorded deposits are not the transactions sent")
    uncredited = [row for row in rows if row.status != DepositStatus.CREDITED.value]
    if uncredited:
        watch.fail(f"{len(uncredited)} deposits not credited")

    # Each transaction in the block the watcher recorded it in, and not reverted.
    with httpx.Client(timeout=60) as client:
        receipts = rpc_batch(
            client, chain.url, [("eth_getTransactionReceipt", [p.tx_hash]) for p in burst]
        )
    by_tx = {row.tx_hash: row for row in rows}
    for planned, receipt in zip(burst, receipts, strict=True):
        row = by_tx.get(planned.tx_hash)
        if receipt is None or receipt["status"] != "0x1":
            watch.fail(f"{planned.tx_hash}: no successful receipt")
        elif row is not None and (
            int(receipt["blockNumber"], 16),
            str(receipt["blockHash"]).lower(),
        ) != (row.block_number, row.block_hash):
            watch.fail(f"{planned.tx_hash}: recorded in another block than its receipt's")

    # Exactly once in the ledger: one deposit transfer per log, named as the watcher names it.
    async with db.engine.connect() as connection:
        found = await connection.execute(
            text("SELECT id FROM ledger_transfers WHERE code = 'deposit'")
        )
        transfers = Counter(str(tid) for (tid,) in found)
    wanted = {deposit_transfer_id(watch.chain, row.tx_hash, row.log_index) for row in rows}
    if set(transfers) != wanted or max(transfers.values(), default=1) != 1:
        watch.fail(f"{sum(transfers.values())} deposit transfers for {len(wanted)} deposits")

    # Balances: each user's the sum of their deposits scaled to ledger units, custody the total.
    expected: defaultdict[int, Counter[str]] = defaultdict(Counter)
    for planned in burst:
        decimals = NATIVE_DECIMALS if planned.asset != "USDT" else chain.decimals
        expected[planned.user_id][planned.asset] += to_ledger_units(
            planned.raw_amount, decimals, ASSETS[planned.asset].scale
        )
    async with db.reads() as session:
        for user_id, wants in expected.items():
            held = await balances(session, user_id)
            for asset in watch.assets:
                have = held[asset]
                amount = 0 if have is None else have.balance
                if amount != wants[asset]:
                    watch.fail(f"user {user_id} {asset}: {amount}, deposited {wants[asset]}")
                mirror = trading.available(user_id, asset)
                if mirror is not None and mirror != amount:
                    watch.fail(f"user {user_id} {asset}: funds mirror {mirror}, ledger {amount}")
    for asset in watch.assets:
        total = sum(wants[asset] for wants in expected.values())
        moved = -await custody(db, watch.chain, asset)
        if moved != total:
            watch.fail(f"sys:custody_{watch.chain}:{asset} moved {moved}, deposits {total}")

    report = await verify(db)
    if not report.ok:
        watch.fail(f"{report.summary()}: {report.problems[:3]}")
    for line in LOGGED:
        watch.fail(f"logged while running: {line[:300]}")


# --- the figures -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.{1 if abs(seconds) < 0.01 else 0}f} ms"


def latency_row(name: str, values: list[float], target: str) -> list[str]:
    ordered = sorted(values)
    return [
        name,
        ms(percentile(ordered, 50)),
        ms(percentile(ordered, 99)),
        ms(ordered[-1]),
        target,
    ]


def report(args: argparse.Namespace, outcome: Outcome) -> None:
    mined, n = outcome.mined, args.confirmations
    print()
    print(
        f"machine: {os.cpu_count()} cores (anvil, the database and this process share them); "
        f"chain: {args.chain} on anvil; database: {args.db}; watcher polls every "
        f"{args.poll_seconds} s; a block every {args.block_seconds} s; "
        f"{n} confirmations (the deposit's block included)"
    )
    # (block, credited at) of each deposit credited with its Nth confirmation block on record.
    credited = [
        (row.block_number, row.credited_at)
        for row in outcome.rows
        if row.credited_at is not None and row.block_number + n - 1 in mined
    ]
    if not credited:
        print("nothing credited: no figures")
        return
    since_inclusion = [at - mined[block][1] for block, at in credited]
    since_nth = [at - mined[block + n - 1][1] for block, at in credited]
    last = max(at for _, at in credited)
    first_nth = min(mined[block + n - 1][1] for block, _ in credited)
    # The watcher's pace: the gaps between successive credits of deposits in the same block
    # (confirmed together, they wait for nothing but the watcher).
    by_block: defaultdict[int, list[float]] = defaultdict(list)
    for block, at in credited:
        by_block[block].append(at)
    gaps = [b - a for stamps in by_block.values() for a, b in itertools.pairwise(sorted(stamps))]
    assets = Counter(row.asset for row in outcome.rows)
    blocks = sorted(by_block)
    p99 = percentile(sorted(since_nth), 99)
    figures = [
        ["figure", "value"],
        ["deposits", f"{len(outcome.rows)} ({', '.join(f'{k} {v}' for k, v in assets.items())})"],
        ["users", str(args.users)],
        ["blocks holding them", f"{len(blocks)} ({blocks[0]}-{blocks[-1]})"],
        ["credited", str(len(credited))],
        [
            "credited/s, first Nth confirmation to last credit",
            f"{len(credited) / max(last - first_nth, 1e-9):,.1f}",
        ],
        [
            "credited/s, first send to last credit",
            f"{len(credited) / (last - outcome.started_at):,.1f}",
        ],
        ["watcher pace (median gap between credits)", ms(statistics.median(gaps or [0.0]))],
    ]
    verdict = "met" if p99 < TARGET_S else "not met"
    latencies = [
        ["latency to credit", "p50", "p99", "max", "target"],
        latency_row("from inclusion", since_inclusion, ""),
        latency_row(f"from confirmation {n}", since_nth, f"p99 < {TARGET_S:.0f} s: {verdict}"),
    ]
    calls = [["watcher RPC", "calls", "per deposit", "total", "mean"]]
    for method, count in outcome.calls.most_common():
        seconds = outcome.rpc_seconds[method]
        share = f"{count / len(credited):.2f}"
        calls.append([method, str(count), share, ms(seconds), ms(seconds / count)])
    for table in (figures, latencies, calls):
        print("\n".join(text_table(table)))
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deposits", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-block", type=int, default=100)
    parser.add_argument("--block-seconds", type=float, default=0.25)
    parser.add_argument(
        "--confirmations", type=int, default=0, help="default: the chain's (12 eth, 15 bnb)"
    )
    parser.add_argument("--poll-seconds", type=float, default=0.1)
    parser.add_argument("--native-share", type=float, default=0.25)
    parser.add_argument("--chain", choices=list(CHAINS), default="bnb")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for every credit")
    args = parser.parse_args()
    if not args.confirmations:
        args.confirmations = ChainsSettings().evm[args.chain].confirmations
    outcome = asyncio.run(run(args))
    report(args, outcome)
    if outcome.problems:
        print(f"BROKEN: {len(outcome.problems)} problems")
        for problem in outcome.problems[:20]:
            print(f"  {problem}")
        raise SystemExit(1)
    print(
        "checks: every deposit credited once, never before its Nth confirmation; balances, "
        "custody and funds mirror match the deposits; ledger verify OK; nothing logged"
    )


if __name__ == "__main__":
    main()
