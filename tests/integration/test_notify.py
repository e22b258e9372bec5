"""The outbox and its worker: the real aiogram Bot against a local server that answers like the
Bot API (429, 403, 502 on demand), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from backend.auth.signin import sign_in
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.ledger.service import Ledger
from backend.notify.limiter import MemoryLimiter, RedisLimiter
from backend.notify.models import Status
from backend.notify.service import enqueue
from backend.points.service import Points
from backend.testing.fake_bot_api import FakeBotAPI, Reply
from backend.users.models import User
from backend.users.service import TelegramProfile, reopen_bot_chat
from tests.helpers import (
    PER_CHAT,
    PER_SECOND,
    REDIS_PREFIX,
    drain,
    make_settings,
    queue,
    rows,
    users,
)


def chat_of(call: Any) -> int:
    return int(call.params["chat_id"])


async def test_committed_notifications_are_delivered_once_and_rolled_back_ones_never(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    first, second = await users(db, 2)
    await queue(db, first, "cause-1")
    await queue(db, first, "cause-1")  # the same cause again: nothing new is queued

    async def queue_then_fail() -> None:
        async with unit_of_work(db) as uow:
            await enqueue(uow, second, "referral_reward", {"amount": 5, "level": 2}, "cause-2")
            raise RuntimeError("the cause rolled back")

    with pytest.raises(RuntimeError):
        await queue_then_fail()
    worker = worker_factory()
    await drain(worker, db)
    sent = telegram.sent("sendMessage")
    assert [chat_of(call) for call in sent] == [7_000_000]
    assert "+10 points" in sent[0].params["text"]
    button = sent[0].params["reply_markup"]["inline_keyboard"][0][0]
    assert button["web_app"]["url"] == "https://app.example.test/?tab=points"
    (row,) = await rows(db)
    assert (row.status, row.message_id, row.attempts) == ("sent", 1, 0)


async def test_retry_after_is_honoured_without_counting_as_a_failure(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (user,) = await users(db, 1)
    telegram.script(7_000_000, Reply(status=429, retry_after=1))
    await queue(db, user, "cause")
    await drain(worker_factory(), db)
    first, second = telegram.sent("sendMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    (row,) = await rows(db)
    assert (row.status, row.attempts) == ("sent", 0)


async def test_server_errors_back_off_then_succeed_or_end_in_the_dead_letters(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    lucky, unlucky = await users(db, 2)
    telegram.script(7_000_000, Reply(status=502), Reply(status=502))
    telegram.script(7_000_001, *(Reply(status=502) for _ in range(5)))
    await queue(db, lucky, "lucky")
    await queue(db, unlucky, "unlucky")
    await drain(worker_factory(max_attempts=3), db)
    by_chat = Counter(chat_of(call) for call in telegram.sent("sendMessage"))
    assert by_chat == {7_000_000: 3, 7_000_001: 3}
    done, dead = await rows(db)
    assert (done.status, done.attempts) == ("sent", 2)
    assert (dead.status, dead.attempts) == ("dead", 3) and "Bad Gateway" in (dead.last_error or "")


async def test_a_user_who_blocked_the_bot_is_not_notified_until_they_come_back(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (user,) = await users(db, 1)
    telegram.script(7_000_000, Reply(status=403))
    await queue(db, user, "one")
    await queue(db, user, "two")
    worker = worker_factory(concurrency=1)
    await drain(worker, db)
    assert len(telegram.sent("sendMessage")) == 1
    assert {row.status for row in await rows(db)} == {"skipped"}
    await queue(db, user, "three")  # refused while blocked
    assert len(await rows(db)) == 2

    async with unit_of_work(db) as uow:  # the user presses /start again
        blocked = await uow.session.get(User, user)
        assert blocked is not None and blocked.bot_blocked_at is not None
        await reopen_bot_chat(uow, blocked)
    await queue(db, user, "four")
    await drain(worker, db)
    assert [call.status for call in telegram.sent("sendMessage")] == [403, 200]


async def test_messages_speak_the_users_language(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (russian,) = await users(db, 1, language="ru")
    await queue(db, russian, "ru")
    await drain(worker_factory(), db)
    (call,) = telegram.sent("sendMessage")
    assert "очков" in call.params["text"]
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Открыть SimplRefQ"


async def test_rates_hold_per_chat_and_overall(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    ids = await users(db, 6)
    for n in range(30):
        await queue(db, ids[n % len(ids)], f"burst-{n}")
    await drain(worker_factory(), db, within=20)
    sent = telegram.sent("sendMessage")
    assert len(sent) == 30
    times = sorted(call.at for call in sent)
    window = 1.0
    busiest = max(sum(1 for t in times if start <= t < start + window) for start in times)
    assert busiest <= PER_SECOND + 1
    for chat in {chat_of(call) for call in sent}:
        at = sorted(call.at for call in sent if chat_of(call) == chat)
        assert all(b - a >= 1 / PER_CHAT - 0.02 for a, b in itertools.pairwise(at)), at


async def test_two_workers_never_deliver_the_same_row(
    db: Database, telegram: FakeBotAPI, worker_factory: Any, redis_url: str
) -> None:
    ids = await users(db, 40)
    for n, user in enumerate(ids):
        await queue(db, user, f"pair-{n}")
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"{REDIS_PREFIX}-pair-{time.monotonic_ns()}"
    try:
        # Two processes' limiters share Redis; on SQLite (one process) they share memory.
        memory = MemoryLimiter(PER_SECOND * 2, PER_CHAT)
        shared = [
            RedisLimiter(client, prefix, PER_SECOND * 2, PER_CHAT)
            if db.dialect == "postgresql"
            else memory
            for _ in range(2)
        ]
        first, second = (worker_factory(limiter=limiter) for limiter in shared)
        await asyncio.gather(drain(first, db), drain(second, db))
    finally:
        await client.aclose()
    chats = Counter(chat_of(call) for call in telegram.sent("sendMessage"))
    assert len(chats) == 40 and set(chats.values()) == {1}
    assert {row.status for row in await rows(db)} == {Status.SENT.value}


async def test_a_referral_joining_and_its_reward_queue_messages_for_the_referrer(
    db: Database, tmp_path: Path
) -> None:
    (referrer,) = await users(db, 1)
    async with unit_of_work(db) as uow:
        code = (await uow.session.get(User, referrer)).referral_code  # type: ignore[union-attr]
        profile = TelegramProfile(7_100_000, "friend")
        referee = (await sign_in(uow, profile, start_param=f"ref_{code}")).user.id
    assert referee is not None
    points = Points(Ledger(), make_settings(tmp_path).points)
    for _ in range(2):  # a retried cause queues nothing new
        async with unit_of_work(db) as uow:
            await points.award(uow, referee, 100, "checkin", "once")
    joined, reward = await rows(db)
    assert (joined.user_id, joined.kind, joined.payload) == (
        referrer,
        "referral_joined",
        {"name": "friend"},
    )
    assert (reward.user_id, reward.kind, reward.status) == (referrer, "referral_reward", "pending")
    assert reward.payload == {"amount": 10, "level": 1, "status": "pending"}


async def test_a_row_claimed_by_a_worker_that_died_is_delivered_after_its_lease(
    db: Database, telegram: FakeBotAPI, worker_factory: Any
) -> None:
    (user,) = await users(db, 1)
    await queue(db, user, "orphan")
    crashed = worker_factory(lease_seconds=0.3)
    assert len(await crashed.claim(10)) == 1  # claimed, then the worker dies
    survivor = worker_factory(lease_seconds=0.3)
    assert await survivor.claim(10) == []  # still leased
    await asyncio.sleep(0.4)
    await drain(survivor, db)
    (call,) = telegram.sent("sendMessage")
    (row,) = await rows(db)
    assert row.status == "sent" and call.status == 200
