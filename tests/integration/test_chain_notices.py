"""What a user hears of their deposits: a ``deposit_credited`` notification queued with the
credit, delivered by the bot, and ``deposit`` events on their private hub topic, live.  On the
real chains of ``test_chain_deposits`` (anvil as Ethereum and as BNB Chain), on SQLite and
PostgreSQL.

What must hold: one notification per deposit however often the watcher runs, restarts or
retries a credit; the bot's text names the amount and the chain; the Wallet tab's topic hears
the deposit when it is seen and when it is credited; a hub that cannot be reached costs the
events only, never the credit or the notification.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlmodel import col, select
from structlog.testing import capture_logs

from backend.chains.deposit_models import ChainDeposit, DepositStatus
from backend.chains.deposits import DepositWatcher
from backend.chains.rpc import EvmRpc
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.hub.backends.memory import MemoryBackend
from backend.hub.backends.redis import RedisBackend
from backend.hub.hub import Hub
from backend.hub.subscriber import Outgoing, Subscriber
from backend.hub.topics import parse_topic
from backend.notify import preferences
from backend.notify.models import Notification
from backend.testing.fake_bot_api import FakeBotAPI
from backend.users.models import User
from tests.helpers import drain, rows
from tests.integration import test_chain_deposits as chain_deposits
from tests.integration.test_chain_deposits import CONFIRMATIONS, Chain, deposits
from tests.trading_helpers import Desks, balance_of, make_users, running

# The anvils, the vaults on them and the databases of the deposit tests.
_needs_anvil = chain_deposits._needs_anvil
anvils = chain_deposits.anvils
chains = chain_deposits.chains
db = chain_deposits.db
desks = chain_deposits.desks


class Inbox:
    """A hub subscriber's wire that keeps what it is sent (a client that always keeps up)."""

    is_paused = False

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def send_item(self, item: Outgoing) -> None:
        self.frames.append(json.loads(item.text))

    def close(self, code: int, reason: str) -> None:
        raise AssertionError(f"the hub closed a subscriber that keeps up: {code} {reason}")

    def deposits(self) -> list[dict[str, Any]]:
        return [
            frame["data"]
            for frame in self.frames
            if frame.get("type") == "event" and frame["data"].get("type") == "deposit"
        ]


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    """The in-process hub, as the embedded default runs it."""
    started = Hub(MemoryBackend())
    await started.start()
    yield started
    await started.close()


async def listen(hub: Hub, user: int) -> Inbox:
    inbox = Inbox()
    await hub.subscribe(
        Subscriber(inbox, lambda _topic: None), parse_topic(f"user:{user}"), None, None
    )
    return inbox


def watcher(desks: Desks, chain: Chain, hub: Hub) -> DepositWatcher:
    return DepositWatcher(
        desks.db,
        desks.ledger,
        desks.trading,
        chain.name,
        chain.settings(),
        EvmRpc(chain.url),
        max_blocks=4,
        hub=hub,
    )


async def scan(watching: DepositWatcher) -> int:
    """One pass, the watcher's node client closed after it (a restart opens a new one)."""
    try:
        return await watching.scan()
    finally:
        await watching.rpc.close()


async def notices(db: Database) -> list[Notification]:
    return [row for row in await rows(db) if row.kind == "deposit_credited"]


async def telegram_id_of(db: Database, user: int) -> int:
    async with db.reads() as session:
        found = await session.get(User, user)
    assert found is not None and found.telegram_id is not None
    return found.telegram_id


async def test_a_credited_deposit_queues_one_notice_across_reruns_restarts_and_retries(
    db: Database, chains: dict[str, Chain], hub: Hub
) -> None:
    bnb = chains["bnb"]
    (user,) = await make_users(db, 1)
    inbox = await listen(hub, user)
    async with running(db) as desks:
        bnb.deposit(user, 25)
        assert await scan(watcher(desks, bnb, hub)) == 0
        (seen,) = await deposits(db)
        assert await notices(db) == []  # seen is not credited: nothing to tell the bot yet
        bnb.mine(CONFIRMATIONS)
        assert await scan(watcher(desks, bnb, hub)) == 1
        assert await scan(watcher(desks, bnb, hub)) == 0
    (notice,) = await notices(db)
    assert notice.user_id == user
    assert notice.payload == {
        "chain": "bnb",
        "asset": "USDT",
        "amount": "25",
        "tx_hash": seen.tx_hash,
    }
    assert notice.dedupe_key == f"deposit:bnb:{seen.tx_hash}:{seen.log_index}"

    # A crash between the credit and marking the row: a new process retries the credit.
    async with db.sessions() as session:
        (row,) = (await session.exec(select(ChainDeposit))).all()
        row.status = DepositStatus.SEEN.value
        session.add(row)
        await session.commit()
    async with running(db) as desks:
        assert await scan(watcher(desks, bnb, hub)) == 1
        assert await scan(watcher(desks, bnb, hub)) == 0
    assert [n.id for n in await notices(db)] == [notice.id]
    assert await balance_of(db, user, "USDT") == 25_000_000

    event = {
        "type": "deposit",
        "chain": "bnb",
        "asset": "USDT",
        "amount": "25",
        "tx_hash": seen.tx_hash,
        "log_index": seen.log_index,
    }
    # Seen once (a re-scan of a deposit already seen says nothing), then credited; the retried
    # credit says so again: the tab shows a status, so saying it twice changes nothing.
    assert inbox.deposits() == [
        {**event, "status": "seen"},
        {**event, "status": "credited"},
        {**event, "status": "credited"},
    ]


async def test_the_bot_tells_each_user_in_their_language(
    desks: Desks, chains: dict[str, Chain], hub: Hub, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    db = desks.db
    english, russian = await make_users(db, 2)
    async with unit_of_work(db) as uow:
        await preferences.change(uow, russian, language="ru")
    eth, bnb = chains["ethereum"], chains["bnb"]
    bnb.deposit(english, 25)
    eth.deposit_to_forwarder(russian, 7)
    for chain in (eth, bnb):
        chain.mine(CONFIRMATIONS)
    assert await scan(watcher(desks, bnb, hub)) == 1
    assert await scan(watcher(desks, eth, hub)) == 1

    await drain(worker_factory(), db)
    sent = {int(call.params["chat_id"]): call.params for call in telegram.sent("sendMessage")}
    assert set(sent) == {await telegram_id_of(db, english), await telegram_id_of(db, russian)}
    to_english = sent[await telegram_id_of(db, english)]
    assert to_english["text"] == "💰 Deposit credited: <b>25 USDT</b> on BNB Chain"
    assert to_english["parse_mode"] == "HTML"
    button = to_english["reply_markup"]["inline_keyboard"][0][0]
    assert button["web_app"]["url"] == "https://app.example.test/?tab=wallet"
    to_russian = sent[await telegram_id_of(db, russian)]
    assert to_russian["text"] == "💰 Пополнение зачислено: <b>7 USDT</b> в сети Ethereum"
    assert {row.status for row in await rows(db)} == {"sent"}


async def test_a_user_who_turned_wallet_news_off_hears_nothing_from_the_bot(
    desks: Desks, chains: dict[str, Chain], hub: Hub, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    async with unit_of_work(db) as uow:
        await preferences.change(uow, user, topics={"wallet": False})
    inbox = await listen(hub, user)
    eth = chains["ethereum"]
    eth.deposit(user, 3)
    eth.mine(CONFIRMATIONS)
    assert await scan(watcher(desks, eth, hub)) == 1
    await drain(worker_factory(), db)
    assert telegram.sent("sendMessage") == []
    assert [n.status for n in await notices(db)] == ["skipped"]
    assert [e["status"] for e in inbox.deposits()] == ["seen", "credited"]  # the tab still hears


async def test_a_hub_that_cannot_be_reached_costs_the_events_not_the_credit(
    desks: Desks, chains: dict[str, Chain]
) -> None:
    db = desks.db
    (user,) = await make_users(db, 1)
    # Nothing listens on the discard port: every publish fails to connect.
    unreachable = aioredis.Redis.from_url("redis://127.0.0.1:9", socket_connect_timeout=1)
    down = Hub(RedisBackend(unreachable, "simplrefq-test-down"))
    eth = chains["ethereum"]
    eth.deposit(user, 4)
    eth.mine(CONFIRMATIONS)
    try:
        with capture_logs() as logs:
            assert await scan(watcher(desks, eth, down)) == 1
    finally:
        await unreachable.aclose()
    assert await balance_of(db, user, "USDT") == 4_000_000
    assert [d.status for d in await deposits(db)] == [DepositStatus.CREDITED.value]
    assert [n.user_id for n in await notices(db)] == [user]
    failed = [entry for entry in logs if entry["event"] == "after_commit_failed"]
    assert len(failed) == 2  # the seen event's and the credited event's


async def test_deposits_to_no_user_of_ours_tell_nobody(
    desks: Desks, chains: dict[str, Chain], hub: Hub
) -> None:
    db = desks.db
    stranger = 987_654_321  # no such user
    inbox = await listen(hub, stranger)
    eth = chains["ethereum"]
    eth.deposit(stranger, 5)
    eth.mine(CONFIRMATIONS)
    assert await scan(watcher(desks, eth, hub)) == 0
    async with db.reads() as session:
        statuses = (await session.exec(select(col(ChainDeposit.status)))).all()
    assert statuses == [DepositStatus.UNKNOWN_USER.value]
    assert await rows(db) == []
    assert inbox.deposits() == []
