"""Withdrawals on two real chains (anvil as Ethereum and as BNB Chain, the compiled vault on
each), a real ``Trading`` debiting and returning through its writers, on SQLite and PostgreSQL.

What must hold: a withdrawal is debited once, paid once, and its custody and fee land in the
ledger; USDT deposited on one chain leaves on the other; a stuck transaction is replaced (same
nonce, higher fees) and the user is paid by exactly one of the two; every refusal leaves the
balance as it was; what ends unpaid comes back exactly once; the ledger verifies throughout.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from sqlmodel import col, select
from web3 import Web3
from web3.contract import Contract

from backend.audit.service import AuditContext
from backend.chains.deposit_queries import remember_address
from backend.chains.deposits import DepositWatcher, custody_source
from backend.chains.evm import NATIVE, deposit_address, forwarder_creation_code
from backend.chains.payouts import FEES, Payouts
from backend.chains.rpc import EvmRpc
from backend.chains.withdrawal_models import ChainTx, ChainWithdrawal, TxStatus, WithdrawalStatus
from backend.chains.withdrawals import Withdrawals, debit_id
from backend.config import ChainsSettings, EvmChainSettings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.errors import DomainError
from backend.hub.backends.memory import MemoryBackend
from backend.hub.hub import Hub
from backend.ledger.domain import system_account
from backend.ledger.verify import verify
from backend.notify.models import Notification
from backend.testing.anvil import find_anvil
from backend.trading.commands import WITHDRAWING, Deposit, Withdraw
from backend.trading.router import TradingRouter
from tests.chain_helpers import FORWARDER, Node, NodeRelay, deploy_contract, rpc, running_nodes
from tests.chain_helpers import sign_withdrawal as sign
from tests.helpers import BACKENDS, open_database, require
from tests.helpers import counters as accounts
from tests.trading_helpers import Desks, balance_of, make_users, posted, running

CHAINS = {"ethereum": (1, 6), "bnb": (56, 18)}
CONFIRMATIONS = 2
AUDIT = AuditContext(actor_id=None)


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
    admin: ChecksumAddress
    operator: LocalAccount

    def send(self, call: Any) -> None:
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": self.admin}))
        assert receipt["status"] == 1

    def fund_vault(self, whole: int) -> None:
        """Liquidity the operator moved in (no deposit event: nobody is credited)."""
        self.send(self.usdt.functions.mint(self.vault.address, whole * 10**self.decimals))

    def mine(self, blocks: int = 1) -> None:
        rpc(self.w3, "anvil_mine", hex(blocks))

    def usdt_of(self, holder: str) -> int:
        return int(self.usdt.functions.balanceOf(holder).call())

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
    rpc(w3, "evm_setAutomine", True)
    admin: ChecksumAddress = w3.eth.accounts[0]
    operator: LocalAccount = Account.create()
    rpc(w3, "anvil_setBalance", operator.address, hex(10**20))

    decimals = CHAINS[name][1]
    vault = deploy_contract(w3, "Vault", admin, admin, operator.address)
    usdt = deploy_contract(w3, "TestUSDT", admin, decimals)
    return Chain(name, w3, node.url, vault, usdt, decimals, admin, operator)


@pytest.fixture
def chains(anvils: dict[str, Node]) -> dict[str, Chain]:
    return {name: deploy(anvils, name) for name in CHAINS}


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with AsyncExitStack() as stack:
        yield await open_database(stack, request.param, tmp_path)


@dataclass
class Desk:
    """The withdrawals service and a payouts runner per chain on a running ``Trading``."""

    desks: Desks
    chains: dict[str, Chain]
    withdrawals: Withdrawals
    payouts: dict[str, Payouts]

    async def pay(self, passes: int = 1) -> None:
        for _ in range(passes):
            for payout in self.payouts.values():
                await payout.step()


def chains_settings(chains: dict[str, Chain], **extra: Any) -> ChainsSettings:
    evm = {name: chain.settings().model_dump() for name, chain in chains.items()}
    return ChainsSettings(evm=evm, **extra)


@pytest.fixture
async def desk(db: Database, chains: dict[str, Chain]) -> AsyncIterator[Desk]:
    async with running(db) as desks:
        hub = Hub(MemoryBackend())
        await hub.start()
        key = chains["ethereum"].operator.key.hex()
        settings = chains_settings(chains, operator_key=key)
        withdrawals = Withdrawals(db, TradingRouter(desks.trading), hub, settings)
        payouts = {
            name: Payouts(
                db,
                desks.ledger,
                desks.trading,
                hub,
                name,
                settings.evm[name],
                settings,
                EvmRpc(chain.url),
                chain.operator.key.hex(),
                requested_grace=timedelta(0),
            )
            for name, chain in chains.items()
        }
        yield Desk(desks, chains, withdrawals, payouts)
        await withdrawals.close()
        for payout in payouts.values():
            await payout.tx.rpc.close()
        await hub.close()


async def credit(desks: Desks, user: int, asset: str, units: int, chain: str = "bnb") -> None:
    """A deposit credited as the watcher credits it (its own tests prove the watcher)."""
    writer = next(iter(desks.trading.writers.values()))
    await writer.submit(
        Deposit(user, asset, units, custody_source(chain), f"test:{user}:{asset}:{units}")
    )


async def withdraw(
    desk: Desk, user: int, wallet: LocalAccount, chain: str, amount: str, asset: str = "USDT"
) -> ChainWithdrawal:
    async with desk.desks.db.reads() as session:
        quote = await desk.withdrawals.quote(session, user, chain, asset, amount, wallet.address)
    draft = desk.withdrawals.draft(chain, asset, amount, wallet.address)
    return await desk.withdrawals.request(
        AUDIT, user, draft, quote.deadline, sign(wallet, quote.typed_data)
    )


async def row(db: Database, withdrawal_id: int | None) -> ChainWithdrawal:
    async with db.reads() as session:
        found = await session.get(ChainWithdrawal, withdrawal_id)
        assert found is not None
        return found


async def system(db: Database, name: str, asset: str = "USDT") -> int:
    return posted((await accounts(db)).get(system_account(name, asset)))


async def notices(db: Database, kind: str) -> list[Notification]:
    async with db.reads() as session:
        query = select(Notification).where(col(Notification.kind) == kind)
        return list((await session.exec(query)).all())


async def assert_clean(db: Database) -> None:
    report = await verify(db)
    assert report.ok, report.problems


# --- end to end -------------------------------------------------------------------------------


async def test_usdt_deposited_on_bnb_is_withdrawn_on_ethereum(desk: Desk) -> None:
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 100_000_000, chain="bnb")
    eth.fund_vault(1_000)

    made = await withdraw(desk, user, wallet, "ethereum", "30")
    assert made.status == WithdrawalStatus.QUEUED.value
    assert await balance_of(db, user, "USDT") == 70_000_000  # debited at once, fee included
    assert await system(db, WITHDRAWING) == 30_000_000

    await desk.pay()
    sent = await row(db, made.id)
    assert sent.status == WithdrawalStatus.SENT.value and sent.tx_hash
    # Automine: in a block, but one confirmation short.
    await desk.pay()
    assert (await row(db, made.id)).status == WithdrawalStatus.SENT.value
    eth.mine(CONFIRMATIONS - 1)
    await desk.pay()

    paid = await row(db, made.id)
    assert paid.status == WithdrawalStatus.CONFIRMED.value
    assert eth.usdt_of(wallet.address) == 29 * 10**6  # 30 less the 1 USDT fee
    assert await system(db, WITHDRAWING) == 0
    assert await system(db, custody_source("ethereum")) == 29_000_000
    assert await system(db, FEES) == 1_000_000
    assert await balance_of(db, user, "USDT") == 70_000_000
    assert [n.payload["amount"] for n in await notices(db, "withdrawal_sent")] == ["29"]
    # Passes after the end change nothing.
    await desk.pay(2)
    assert eth.usdt_of(wallet.address) == 29 * 10**6
    await assert_clean(db)


async def test_native_coin_is_paid_in_wei(desk: Desk) -> None:
    db, bnb = desk.desks.db, desk.chains["bnb"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "BNB", 2 * 10**9, chain="bnb")  # 2 BNB in gwei units
    rpc(bnb.w3, "anvil_setBalance", bnb.vault.address, hex(5 * 10**18))

    made = await withdraw(desk, user, wallet, "bnb", "0.5", asset="BNB")
    await desk.pay()
    bnb.mine(CONFIRMATIONS - 1)
    await desk.pay()
    assert (await row(db, made.id)).status == WithdrawalStatus.CONFIRMED.value
    assert bnb.w3.eth.get_balance(wallet.address) == 5 * 10**17 - 10**15  # less the fee
    assert await balance_of(db, user, "BNB") == 15 * 10**8
    await assert_clean(db)


async def test_a_stuck_transaction_is_replaced_and_pays_once(desk: Desk) -> None:
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 50_000_000)
    eth.fund_vault(100)
    rpc(eth.w3, "evm_setAutomine", False)  # nothing is mined until the test says so

    made = await withdraw(desk, user, wallet, "ethereum", "20")
    await desk.pay()
    first = (await row(db, made.id)).tx_hash
    assert first is not None
    await desk.pay()  # not stuck yet: no replacement
    assert (await row(db, made.id)).tx_hash == first

    desk.payouts["ethereum"].tx.stuck_seconds = 0.0
    await desk.pay()
    second = (await row(db, made.id)).tx_hash
    assert second is not None and second != first
    async with db.reads() as session:
        sent = list(
            await session.exec(select(ChainTx).where(col(ChainTx.withdrawal_id) == made.id))
        )
    assert len(sent) == 2 and sent[0].nonce == sent[1].nonce
    assert int(sent[1].max_fee) >= int(sent[0].max_fee) * 125 // 100
    assert int(sent[1].priority_fee) > int(sent[0].priority_fee)

    desk.payouts["ethereum"].tx.stuck_seconds = 3600.0
    rpc(eth.w3, "evm_setAutomine", True)
    eth.mine(CONFIRMATIONS)
    await desk.pay()
    paid = await row(db, made.id)
    assert paid.status == WithdrawalStatus.CONFIRMED.value
    assert paid.tx_hash == second  # the replacement is the one the node kept
    assert eth.w3.eth.get_transaction_receipt(second)["status"] == 1
    async with db.reads() as session:
        statuses = {
            tx.tx_hash: tx.status
            for tx in await session.exec(
                select(ChainTx).where(col(ChainTx.withdrawal_id) == made.id)
            )
        }
    assert statuses == {first: TxStatus.REPLACED.value, second: TxStatus.MINED.value}
    assert eth.usdt_of(wallet.address) == 19 * 10**6  # paid once
    assert eth.vault.functions.nonces(wallet.address).call() == 1
    await assert_clean(db)


# --- refusals: nothing moves ------------------------------------------------------------------


async def refused(desk: Desk, code: str, user: int, **body: Any) -> None:
    wallet: LocalAccount = body.pop("wallet")
    fields = {"chain": "ethereum", "asset": "USDT", "amount": "20", "address": wallet.address}
    fields.update(body)
    before = await balance_of(desk.desks.db, user, "USDT")
    with pytest.raises(DomainError) as caught:
        async with desk.desks.db.reads() as session:
            await desk.withdrawals.quote(session, user, **fields)
    assert caught.value.code == code, caught.value
    assert await balance_of(desk.desks.db, user, "USDT") == before


async def test_bad_requests_are_refused_before_anything_moves(desk: Desk) -> None:
    db = desk.desks.db
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 100_000_000)
    mixed = wallet.address
    # Swap the case of the first letter in the address: the EIP-55 checksum breaks.
    index = next(i for i, c in enumerate(mixed[2:], 2) if c.isalpha())
    typo = mixed[:index] + mixed[index].swapcase() + mixed[index + 1 :]
    cases = [
        ("unknown_chain", {"chain": "solana"}),
        ("unknown_asset", {"asset": "DOGE"}),
        ("invalid_address", {"address": typo}),
        ("invalid_address", {"address": "EQD4FPq-PRDieyQKkizFTRtSDyucUIqrj0v_zXJmqaDp6_0t"}),
        ("invalid_address", {"address": mixed[2:]}),
        ("invalid_amount", {"amount": "20.0000001"}),  # USDT has 6 places
        ("invalid_amount", {"amount": "-5"}),
        ("invalid_amount", {"amount": "NaN"}),
        ("below_minimum", {"amount": "9.99"}),
        ("above_maximum", {"amount": "50000.01"}),
    ]
    for code, body in cases:
        await refused(desk, code, user, wallet=wallet, **body)

    # Above the balance: the books refuse the debit, and no row is left behind.
    async with db.reads() as session:
        quote = await desk.withdrawals.quote(
            session, user, "ethereum", "USDT", "150", wallet.address
        )
    draft = desk.withdrawals.draft("ethereum", "USDT", "150", wallet.address)
    with pytest.raises(DomainError) as caught:
        await desk.withdrawals.request(
            AUDIT, user, draft, quote.deadline, sign(wallet, quote.typed_data)
        )
    assert caught.value.code == "insufficient_funds"
    assert await balance_of(db, user, "USDT") == 100_000_000
    async with db.reads() as session:
        assert list(await session.exec(select(ChainWithdrawal))) == []
    await assert_clean(db)


async def test_forged_replayed_and_cross_chain_authorisations_are_refused(desk: Desk) -> None:
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 100_000_000)
    eth.fund_vault(100)
    draft = desk.withdrawals.draft("ethereum", "USDT", "20", wallet.address)
    async with db.reads() as session:
        quote = await desk.withdrawals.quote(
            session, user, "ethereum", "USDT", "20", wallet.address
        )
        bnb_quote = await desk.withdrawals.quote(session, user, "bnb", "USDT", "20", wallet.address)

    async def attempt(deadline: int, signature: str) -> str:
        with pytest.raises(DomainError) as caught:
            await desk.withdrawals.request(AUDIT, user, draft, deadline, signature)
        return caught.value.code

    someone_else: LocalAccount = Account.create()
    assert await attempt(quote.deadline, sign(someone_else, quote.typed_data)) == (
        "authorization_invalid"
    )
    # Signed for BNB Chain's vault: on Ethereum it recovers to someone else.
    assert await attempt(bnb_quote.deadline, sign(wallet, bnb_quote.typed_data)) == (
        "authorization_invalid"
    )
    assert await attempt(quote.deadline, "0x1234") == "authorization_invalid"
    assert await attempt(int(time.time()) + 10, sign(wallet, quote.typed_data)) == (
        "authorization_stale"
    )
    assert await balance_of(db, user, "USDT") == 100_000_000

    signature = sign(wallet, quote.typed_data)
    made = await desk.withdrawals.request(AUDIT, user, draft, quote.deadline, signature)
    # The same signature again, while the first is in flight, then after it was paid.
    assert await attempt(quote.deadline, signature) == "withdrawal_in_flight"
    await desk.pay()
    eth.mine(CONFIRMATIONS - 1)
    await desk.pay()
    assert (await row(db, made.id)).status == WithdrawalStatus.CONFIRMED.value
    assert await attempt(quote.deadline, signature) == "authorization_invalid"  # nonce moved on
    assert await balance_of(db, user, "USDT") == 80_000_000
    assert eth.usdt_of(wallet.address) == 19 * 10**6
    await assert_clean(db)


# --- ended unpaid: the amount comes back once ------------------------------------------------


async def test_cancel_reject_approve_and_a_vault_refusal(desk: Desk) -> None:
    db = desk.desks.db
    alice, bob = await make_users(db, 2)
    a_wallet, b_wallet, c_wallet = Account.create(), Account.create(), Account.create()
    await credit(desk.desks, alice, "USDT", 30_000_000_000)  # 30,000 USDT
    await credit(desk.desks, bob, "USDT", 100_000_000)

    # Cancelled before it was sent: back once, and the wallet may withdraw again.
    made = await withdraw(desk, bob, b_wallet, "ethereum", "40")
    assert await balance_of(db, bob, "USDT") == 60_000_000
    cancelled = await desk.withdrawals.cancel(AUDIT, bob, made.id or 0)
    assert cancelled.status == WithdrawalStatus.CANCELLED.value
    with pytest.raises(DomainError) as caught:
        await desk.withdrawals.cancel(AUDIT, bob, made.id or 0)
    assert caught.value.code == "withdrawal_not_cancellable"
    with pytest.raises(DomainError) as caught:
        await desk.withdrawals.cancel(AUDIT, alice, made.id or 0)  # not hers
    assert caught.value.code == "withdrawal_not_found"
    await desk.pay(3)
    assert await balance_of(db, bob, "USDT") == 100_000_000
    assert (await row(db, made.id)).refunded_at is not None
    assert [n.payload["reason"] for n in await notices(db, "withdrawal_returned")] == ["cancelled"]

    # Above the approval threshold (10,000 USDT): waits; rejected, it comes back.
    big = await withdraw(desk, alice, a_wallet, "ethereum", "12000")
    assert big.status == WithdrawalStatus.PENDING_APPROVAL.value
    await desk.pay()
    assert (await row(db, big.id)).status == WithdrawalStatus.PENDING_APPROVAL.value
    async with db.reads() as session:
        assert [w.id for w in await desk.withdrawals.awaiting(session)] == [big.id]
    await desk.withdrawals.reject(AuditContext(actor_id=alice), big.id or 0)
    await desk.pay()
    assert await balance_of(db, alice, "USDT") == 30_000_000_000

    # Approved, but the vault holds too little: the dry run fails it, no gas spent, back.
    again = await withdraw(desk, alice, c_wallet, "ethereum", "11000")
    approved = await desk.withdrawals.approve(AuditContext(actor_id=alice), again.id or 0)
    assert approved.status == WithdrawalStatus.QUEUED.value
    await desk.pay(2)
    failed = await row(db, again.id)
    assert (failed.status, failed.error) == (WithdrawalStatus.FAILED.value, "vault_short")
    assert failed.refunded_at is not None and failed.tx_hash is None
    assert await balance_of(db, alice, "USDT") == 30_000_000_000
    assert await system(db, WITHDRAWING) == 0
    await assert_clean(db)


async def test_a_request_cut_off_after_its_debit_is_settled_from_the_ledger(desk: Desk) -> None:
    """A crash between the debit and the row's next step: the ledger decides."""
    db = desk.desks.db
    (user,) = await make_users(db, 1)
    await credit(desk.desks, user, "USDT", 100_000_000)
    rows = []
    async with unit_of_work(db) as uow:
        for address in (Account.create().address, Account.create().address):
            stored = ChainWithdrawal(
                user_id=user,
                chain="ethereum",
                asset="USDT",
                amount=20_000_000,
                fee=1_000_000,
                token=NATIVE,
                raw_amount="19000000",
                address=address,
                vault_nonce=0,
                nonce_slot=0,
                deadline=int(time.time()) + 3600,
                signature="0x" + "00" * 65,
                status=WithdrawalStatus.REQUESTED.value,
            )
            uow.session.add(stored)
            rows.append(stored)
    debited, lost = rows
    assert debited.id is not None
    await desk.desks.trading.withdraw(
        Withdraw(user, "USDT", 20_000_000, WITHDRAWING, debit_id(debited.id))
    )
    await desk.payouts["ethereum"]._settle_requested()
    assert (await row(db, debited.id)).status == WithdrawalStatus.QUEUED.value
    refused_row = await row(db, lost.id)
    assert (refused_row.status, refused_row.nonce_slot) == (WithdrawalStatus.REFUSED.value, None)
    assert await balance_of(db, user, "USDT") == 80_000_000
    await desk.payouts["ethereum"]._return_ended()  # nothing was debited: nothing to return
    assert await balance_of(db, user, "USDT") == 80_000_000

    # Its debit commits after all (a batch that had taken it before its sender gave up).
    assert lost.id is not None
    await desk.desks.trading.withdraw(
        Withdraw(user, "USDT", 20_000_000, WITHDRAWING, debit_id(lost.id))
    )
    assert await balance_of(db, user, "USDT") == 60_000_000
    await desk.payouts["ethereum"]._return_ended()
    await desk.payouts["ethereum"]._return_ended()
    assert await balance_of(db, user, "USDT") == 80_000_000  # returned, once
    assert (await row(db, lost.id)).refunded_at is not None
    await assert_clean(db)


async def test_without_an_operator_key_nothing_is_taken_and_what_was_is_returned(
    desk: Desk,
) -> None:
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 50_000_000)
    made = await withdraw(desk, user, wallet, "ethereum", "20")  # taken while a key was set
    keyless = chains_settings(desk.chains)  # no operator key
    closed = Withdrawals(db, TradingRouter(desk.desks.trading), desk.withdrawals.hub, keyless)
    try:
        with pytest.raises(DomainError) as caught:
            closed.draft("ethereum", "USDT", "20", wallet.address)
        assert caught.value.code == "withdrawals_unavailable"
    finally:
        await closed.close()
    await desk.withdrawals.cancel(AUDIT, user, made.id or 0)
    payout = Payouts(
        db,
        desk.desks.ledger,
        desk.desks.trading,
        desk.withdrawals.hub,
        "ethereum",
        keyless.evm["ethereum"],
        keyless,
        EvmRpc(eth.url),
        None,
    )
    try:
        await payout.step()
    finally:
        await payout.rpc.close()
    assert (await row(db, made.id)).refunded_at is not None
    assert await balance_of(db, user, "USDT") == 50_000_000
    await assert_clean(db)


# --- deposit addresses are swept ----------------------------------------------------------------


async def test_funds_sent_to_a_deposit_address_are_swept_and_credited(desk: Desk) -> None:
    db, bnb = desk.desks.db, desk.chains["bnb"]
    rich, poor = await make_users(db, 2)
    code = forwarder_creation_code(FORWARDER)
    addresses = {user: deposit_address(bnb.vault.address, user, code) for user in (rich, poor)}
    async with unit_of_work(db) as uow:
        for user, address in addresses.items():
            await remember_address(uow.session, user, "bnb", address)
            await remember_address(uow.session, user, "bnb", address)  # shown twice: one row
    bnb.send(bnb.usdt.functions.mint(addresses[rich], 40 * 10**18))
    bnb.w3.eth.send_transaction(
        {"from": bnb.admin, "to": addresses[rich], "value": 10**17}  # 0.1 BNB
    )
    bnb.send(bnb.usdt.functions.mint(addresses[poor], 10**17))  # 0.1 USDT: below the minimum

    payout = desk.payouts["bnb"]
    await payout.step()
    async with db.reads() as session:
        sweeps = list((await session.exec(select(ChainTx))).all())
    assert [tx.sweep_user_id for tx in sweeps] == [rich]  # the dust is left where it is
    assert bnb.usdt_of(addresses[rich]) == 0
    assert bnb.w3.eth.get_balance(addresses[rich]) == 0
    assert bnb.usdt_of(bnb.vault.address) == 40 * 10**18

    watcher = DepositWatcher(
        db, desk.desks.ledger, desk.desks.trading, "bnb", bnb.settings(), EvmRpc(bnb.url)
    )
    try:
        bnb.mine(CONFIRMATIONS)
        assert await watcher.scan() == 2
    finally:
        await watcher.rpc.close()
    assert await balance_of(db, rich, "USDT") == 40_000_000
    assert await balance_of(db, rich, "BNB") == 10**8
    assert payout.sweeper is not None
    payout.sweeper._round_at = 0.0  # the next round is due now
    await payout.step()  # mined: the sweep ends; nothing left to sweep
    async with db.reads() as session:
        statuses = [tx.status for tx in (await session.exec(select(ChainTx))).all()]
    assert statuses == [TxStatus.MINED.value]
    await assert_clean(db)


async def test_an_authorisation_the_vault_already_used_is_never_returned(desk: Desk) -> None:
    """Paid by a transaction whose receipt was lost: the vault's nonce says so, and returning
    the amount would pay the user twice."""
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 50_000_000)
    eth.fund_vault(100)
    made = await withdraw(desk, user, wallet, "ethereum", "20")
    # The operator's key pays it outside this process's view.
    signed = (
        wallet.address,
        eth.usdt.address,
        int(made.raw_amount),
        made.vault_nonce,
        made.deadline,
    )
    call = eth.vault.functions.withdraw(signed, bytes.fromhex(made.signature[2:]))
    transaction = call.build_transaction(
        {
            "from": eth.operator.address,
            "nonce": eth.w3.eth.get_transaction_count(eth.operator.address),
        }
    )
    raw = eth.operator.sign_transaction(transaction).raw_transaction
    eth.w3.eth.wait_for_transaction_receipt(eth.w3.eth.send_raw_transaction(raw))

    await desk.pay(2)
    ended = await row(db, made.id)
    assert (ended.status, ended.refunded_at) == (WithdrawalStatus.CONFIRMED.value, None)
    assert await balance_of(db, user, "USDT") == 30_000_000
    assert eth.usdt_of(wallet.address) == 19 * 10**6
    assert await system(db, custody_source("ethereum")) == 19_000_000
    await assert_clean(db)


# --- lost receipts and lost nonces: paid once, never returned when paid -----------------------


@pytest.fixture
def relay(chains: dict[str, Chain]) -> Iterator[NodeRelay]:
    node = NodeRelay(chains["ethereum"].url)
    node.start()
    yield node
    node.stop()


def relayed(desk: Desk, relay: NodeRelay) -> Payouts:
    """Ethereum's payouts reading the node through ``relay``."""
    settings = chains_settings(desk.chains)
    return Payouts(
        desk.desks.db,
        desk.desks.ledger,
        desk.desks.trading,
        desk.withdrawals.hub,
        "ethereum",
        settings.evm["ethereum"],
        settings,
        EvmRpc(relay.url),
        desk.chains["ethereum"].operator.key.hex(),
        requested_grace=timedelta(0),
    )


async def test_a_paid_withdrawal_whose_receipt_is_not_seen_is_never_returned(
    desk: Desk, relay: NodeRelay
) -> None:
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 50_000_000)
    eth.fund_vault(100)
    payout = relayed(desk, relay)
    try:
        made = await withdraw(desk, user, wallet, "ethereum", "20")
        await payout.step()  # sent, and mined at once (automine): the vault paid
        assert eth.usdt_of(wallet.address) == 19 * 10**6
        relay.hide_receipts = True  # the provider's node is behind: no receipt to be seen
        eth.mine(CONFIRMATIONS)
        await payout.step()
        paid = await row(db, made.id)
        assert (paid.status, paid.refunded_at) == (WithdrawalStatus.CONFIRMED.value, None)
        with pytest.raises(DomainError) as caught:
            await desk.withdrawals.cancel(AUDIT, user, made.id or 0)
        assert caught.value.code == "withdrawal_not_cancellable"
        await payout.step()
    finally:
        await payout.tx.rpc.close()
    assert await balance_of(db, user, "USDT") == 30_000_000  # debited once, returned never
    assert eth.usdt_of(wallet.address) == 19 * 10**6
    assert await system(db, custody_source("ethereum")) == 19_000_000
    await assert_clean(db)


async def test_a_withdrawal_whose_nonce_another_transaction_took_is_sent_again(
    desk: Desk,
) -> None:
    """The operator's key used elsewhere: its nonce is gone, the vault did not pay; the
    withdrawal goes out again with the next nonce, and pays once."""
    db, eth = desk.desks.db, desk.chains["ethereum"]
    (user,) = await make_users(db, 1)
    wallet: LocalAccount = Account.create()
    await credit(desk.desks, user, "USDT", 50_000_000)
    eth.fund_vault(100)
    rpc(eth.w3, "evm_setAutomine", False)
    made = await withdraw(desk, user, wallet, "ethereum", "20")
    await desk.pay()
    first = await row(db, made.id)
    assert first.status == WithdrawalStatus.SENT.value
    async with db.reads() as session:
        (sent,) = await session.exec(select(ChainTx).where(col(ChainTx.withdrawal_id) == made.id))
    # Elsewhere, the same key sends something else with that nonce and a far higher fee.
    other = eth.operator.sign_transaction(
        {
            "type": 2,
            "chainId": 1,
            "nonce": sent.nonce,
            "to": eth.admin,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": int(sent.max_fee) * 4,
            "maxPriorityFeePerGas": int(sent.priority_fee) * 4,
        }
    )
    eth.w3.eth.send_raw_transaction(other.raw_transaction)
    eth.mine(1)
    assert eth.usdt_of(wallet.address) == 0  # ours was pushed out of the pool
    await desk.payouts["ethereum"]._follow_sent()  # back to the queue...
    assert (await row(db, made.id)).status == WithdrawalStatus.QUEUED.value
    with pytest.raises(DomainError) as caught:  # ...but it was sent once: not the user's now
        await desk.withdrawals.cancel(AUDIT, user, made.id or 0)
    assert caught.value.code == "withdrawal_not_cancellable"
    await desk.pay()  # ...and out again
    resent = await row(db, made.id)
    assert resent.status == WithdrawalStatus.SENT.value and resent.tx_hash != first.tx_hash
    rpc(eth.w3, "evm_setAutomine", True)
    eth.mine(CONFIRMATIONS)
    await desk.pay()
    assert (await row(db, made.id)).status == WithdrawalStatus.CONFIRMED.value
    assert eth.usdt_of(wallet.address) == 19 * 10**6
    assert await balance_of(db, user, "USDT") == 30_000_000
    await assert_clean(db)
