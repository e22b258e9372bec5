"""Notification delivery: N queued notifications over M chats, drained by workers through a
local server that answers like the Bot API, within the configured Telegram limits.

    .venv/bin/python bench/notify_bench.py [--notifications 10000] [--chats 2000] \\
        [--workers 2] [--per-second 30]

Prints the achieved delivery rate against the configured global limit, the busiest second
overall and per chat, the time to drain, and duplicates and losses (both must be 0).  Needs
PostgreSQL and Redis on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import func, select

from backend.config import NotifySettings, Settings
from backend.db.engine import Database
from backend.db.migrate import upgrade_async
from backend.db.uow import unit_of_work
from backend.notify.limiter import RedisLimiter
from backend.notify.models import Notification
from backend.notify.service import enqueue
from backend.notify.worker import NotificationWorker
from backend.testing.fake_bot_api import FakeBotAPI
from backend.testing.scratch import REDIS_URL, create_database, drop_database, insert_users
from bot.runtime import create_bot

_AMOUNT = re.compile(r"\+(\d+) points?")


async def queue(url: str, settings: Settings, notifications: int, chats: int) -> Database:
    users = await insert_users(url, chats, 2_000_000_000)
    db = Database.connect(settings)
    for start in range(0, notifications, 500):
        async with unit_of_work(db) as uow:
            for n in range(start, min(start + 500, notifications)):
                # The amount names the notification, so the fake server's log shows which.
                payload = {"amount": n + 1, "level": 1}
                await enqueue(uow, users[n % chats], "referral_reward", payload, f"bench:{n}")
    return db


async def run(args: argparse.Namespace) -> None:
    name, url = await create_database()
    telegram = await FakeBotAPI().start()
    redis = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"simplrefq-bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        app={"env": "test", "data_dir": Path(tempfile.gettempdir())},
        database={"url": url},
        bot={"token": "123456789:bench-token", "api_server": telegram.url},
        notify={"per_second": args.per_second, "per_chat_per_second": args.per_chat},
        log={"level": "WARNING"},
    )
    bots = []
    try:
        await upgrade_async(settings)
        db = await queue(url, settings, args.notifications, args.chats)
        workers = []
        for _ in range(args.workers):
            bot = create_bot(settings)
            bots.append(bot)
            limiter = RedisLimiter(redis, prefix, args.per_second, args.per_chat)
            workers.append(NotificationWorker(db, bot, limiter, settings))
        started = time.monotonic()
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        while len(telegram.sent("sendMessage")) < args.notifications:
            if time.monotonic() - started > args.timeout:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # let the last rows be marked
        drained = time.monotonic() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with db.reads() as session:
            connection = await session.connection()
            query = select(Notification.status, func.count()).group_by(Notification.status)  # type: ignore[call-overload]
            statuses = {row[0]: row[1] for row in await connection.execute(query)}
        await db.dispose()
    finally:
        for bot in bots:
            await bot.session.close()
        await telegram.stop()
        await redis.aclose()
        await drop_database(name)
    report(args, telegram, drained, statuses)


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def report(args: argparse.Namespace, telegram: FakeBotAPI, drained: float, statuses: dict) -> None:
    sent = [call for call in telegram.sent("sendMessage") if call.status == 200]
    ids = Counter(int(_AMOUNT.search(call.params["text"]).group(1)) for call in sent)  # type: ignore[union-attr]
    per_chat: defaultdict[str, list[float]] = defaultdict(list)
    for call in sent:
        per_chat[str(call.params["chat_id"])].append(call.at)
    times = [call.at for call in sent]
    span = max(times) - min(times) if len(times) > 1 else 0.0
    rate = (len(sent) - 1) / span if span else 0.0
    print(
        f"{args.notifications} notifications over {args.chats} chats, {args.workers} workers, "
        f"limits {args.per_second:g}/s overall and {args.per_chat:g}/s per chat"
    )
    print(f"delivery rate          {rate:8.2f} msg/s   (configured {args.per_second:g}/s)")
    print(f"busiest second         {busiest_second(times):8d} msgs")
    gaps = [b - a for t in per_chat.values() for a, b in itertools.pairwise(sorted(t))]
    print(f"closest per-chat gap   {min(gaps, default=0) * 1000:8.0f} ms   (as received)")
    print(f"time to drain          {drained:8.1f} s")
    print(f"duplicates             {sum(c - 1 for c in ids.values()):8d}")
    print(f"lost                   {args.notifications - len(ids):8d}")
    print(f"rows by status         {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    defaults = NotifySettings()
    parser.add_argument("--per-second", type=float, default=defaults.per_second)
    parser.add_argument("--per-chat", type=float, default=defaults.per_chat_per_second)
    parser.add_argument("--timeout", type=float, default=900.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
