"""Ledger benchmark: durable transfers per second on PostgreSQL, and `ledger verify` on 1M.

Runs the ledger service in this process against a scratch PostgreSQL database (migrated, with
10,000 users, each given a starting balance from the rewards pool), with several concurrent
writers, each submitting batches through ``Ledger().submit_batch`` (one transaction per batch).
The workload: mostly points awards from the hot rewards pool to a random user, mixed with user
to user transfers, some of which exceed the sender's balance and are refused.

    .venv/bin/python bench/ledger_bench.py [--part throughput|single|verify|all] [--seconds 20]
        [--writers 4] [--batch 500] [--single-writers 16] [--transfers 1000000] [--keep]

throughput: batches for --seconds (after a 2 s warm-up), then `verify`.  single: batches of one
from --single-writers writers.  verify: loads --transfers through the service (batches of
--batch), then times `verify`.

Needs PostgreSQL on loopback (see README).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from backend.config import Settings
from backend.db.engine import Database
from backend.db.migrate import upgrade_async
from backend.ledger.domain import TransferRequest, system_account, user_account
from backend.ledger.service import Ledger
from backend.ledger.verify import verify
from backend.testing.scratch import create_database, drop_database, insert_users
from backend.testing.stats import percentile

USERS = 10_000
SEED_POINTS = 1_000
POOL = system_account("rewards", "PTS")
AWARD_SHARE = 0.8  # the rest are user -> user transfers
RETRIES = 0


def count_retries(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """Counts the service's retried batches (lost races) instead of printing each."""
    global RETRIES
    if event.get("event") == "ledger_batch_retry":
        RETRIES += 1
        raise structlog.DropEvent
    return event


@dataclass
class Workload:
    """Random transfers: awards from the pool to a user, and user -> user payments."""

    users: list[int]
    prefix: str
    issued: int = 0

    def batch(self, size: int) -> list[TransferRequest]:
        requests = []
        for _ in range(size):
            self.issued += 1
            tid = f"{self.prefix}{self.issued}"
            if random.random() < AWARD_SHARE:
                debit, credit = POOL, user_account(random.choice(self.users), "PTS")
                amount, code = random.randint(1, 100), "reward"
            else:
                sender, receiver = random.sample(self.users, 2)
                debit, credit = user_account(sender, "PTS"), user_account(receiver, "PTS")
                amount, code = random.randint(1, 1_500), "payment"
            requests.append(TransferRequest(tid, code, amount, debit, credit, "PTS"))
        return requests


@dataclass
class Run:
    """What the writers of one run did."""

    created: int = 0
    refused: int = 0
    batches: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, pct: float) -> float:
        """Of the batch latencies, in ms."""
        return percentile(sorted(self.latencies), pct) * 1000

    @property
    def rate(self) -> float:
        return self.created / self.seconds


async def setup(url: str, pool_size: int) -> tuple[Database, list[int]]:
    """Migrates the scratch database and adds USERS users, each with SEED_POINTS."""
    settings = Settings(
        app={"env": "test", "data_dir": Path(tempfile.gettempdir())},
        database={"url": url, "pool_size": pool_size},
        log={"level": "WARNING"},
    )
    await upgrade_async(settings)
    structlog.configure(processors=[count_retries, structlog.dev.ConsoleRenderer()])
    users = await insert_users(url, USERS, 1_000_000_000)
    db = Database.connect(settings)
    ledger = Ledger()
    for start in range(0, USERS, 1_000):
        seed = [
            TransferRequest(
                f"seed:{uid}", "reward", SEED_POINTS, POOL, user_account(uid, "PTS"), "PTS"
            )
            for uid in users[start : start + 1_000]
        ]
        await ledger.submit_batch(db, seed)
    return db, users


async def drive(
    db: Database,
    users: list[int],
    *,
    writers: int,
    batch: int,
    seconds: float | None = None,
    total: int | None = None,
    tag: str = "t",
) -> Run:
    """``writers`` concurrent writers submitting batches until the time or the count is up."""
    ledger, run = Ledger(), Run()
    in_flight = [0]
    started = time.perf_counter()
    deadline = started + (seconds or 0)

    async def writer(number: int) -> None:
        workload = Workload(users, f"{tag}{number}:")
        while True:
            if total is not None:
                # Until ``total`` are created: refused requests are made up for by more batches.
                size = min(batch, total - run.created - in_flight[0])
                if size <= 0:
                    if not in_flight[0]:
                        return
                    await asyncio.sleep(0.01)
                    continue
            elif time.perf_counter() >= deadline:
                return
            else:
                size = batch
            in_flight[0] += size
            requests = workload.batch(size)
            sent = time.perf_counter()
            submitted = await ledger.submit_batch(db, requests)
            run.latencies.append(time.perf_counter() - sent)
            run.batches += 1
            if total is not None and (run.created + submitted.created) // 100_000 > (
                run.created // 100_000
            ):
                elapsed = time.perf_counter() - started
                print(f"  {run.created + submitted.created:,} transfers in {elapsed:.0f} s")
            run.created += submitted.created
            in_flight[0] -= size
            run.refused += sum(not outcome.ok for outcome in submitted.outcomes)

    await asyncio.gather(*(writer(n) for n in range(writers)))
    run.seconds = time.perf_counter() - started
    return run


async def pg_settings(db: Database) -> str:
    async with db.engine.connect() as connection:
        values = []
        for name in ("synchronous_commit", "fsync", "shared_buffers", "max_wal_size"):
            value = (await connection.exec_driver_sql(f"SHOW {name}")).scalar_one()
            values.append(f"{name}={value}")
    return ", ".join(values)


async def checked_verify(db: Database) -> str:
    report = await verify(db)
    print(report.summary())
    for problem in report.problems:
        print(f"  {problem}")
    if not report.ok:
        raise SystemExit("ledger verify failed")
    return report.summary()


def run_line(name: str, run: Run, target: str) -> str:
    return (
        f"{name:28s} {run.rate:8.0f} transfers/s  {run.batches / run.seconds:7.1f} batches/s  "
        f"p50 {run.percentile(50):7.1f} ms  p99 {run.percentile(99):7.1f} ms  "
        f"refused {run.refused}   ({target})"
    )


async def part_throughput(db: Database, users: list[int], args: argparse.Namespace) -> list[str]:
    await drive(db, users, writers=args.writers, batch=args.batch, seconds=2, tag="warm")
    run = await drive(db, users, writers=args.writers, batch=args.batch, seconds=args.seconds)
    line = run_line(f"batches of {args.batch}, {args.writers} writers", run, ">= 10,000/s")
    print(line, f"\n  {run.created} created in {run.seconds:.1f} s")
    return [line, "  " + await checked_verify(db)]


async def part_single(db: Database, users: list[int], args: argparse.Namespace) -> list[str]:
    writers = args.single_writers
    run = await drive(db, users, writers=writers, batch=1, seconds=args.seconds, tag="s")
    line = run_line(f"single transfers, {writers} writers", run, "in-process baseline")
    print(line)
    return [line]


async def part_verify(db: Database, users: list[int], args: argparse.Namespace) -> list[str]:
    async with db.engine.connect() as connection:
        have = (await connection.exec_driver_sql("SELECT count(*) FROM ledger_transfers")).scalar()
    load = max(0, args.transfers - int(have or 0))
    run = await drive(db, users, writers=args.writers, batch=args.batch, total=load, tag="v")
    load_line = run_line(f"load {load:,}, batches of {args.batch}", run, "sustained")
    print(load_line, f"\n  loaded in {run.seconds:.1f} s")
    # As autovacuum would have by then: fresh statistics and visibility map.
    autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as connection:
        await connection.exec_driver_sql("VACUUM ANALYZE ledger_transfers")
    summary = await checked_verify(db)
    return [load_line, f"{'ledger verify':28s} {summary}"]


PARTS = {"throughput": part_throughput, "single": part_single, "verify": part_verify}


async def main_async(args: argparse.Namespace) -> None:
    parts = list(PARTS) if args.part == "all" else [args.part]
    pool = max(args.writers, args.single_writers) + 2
    name, url = await create_database()
    lines = []
    try:
        db, users = await setup(url, pool)
        try:
            settings = await pg_settings(db)
            for part in parts:
                lines += await PARTS[part](db, users, args)
        finally:
            await db.dispose()
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            await drop_database(name)
    print()
    print(f"machine: {os.cpu_count()} cores; PostgreSQL: {settings}")
    print(f"{USERS:,} users + the rewards pool (8 shards); {AWARD_SHARE:.0%} awards")
    for line in lines:
        print(line)
    print(f"batches retried after a lost race: {RETRIES}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single-writers", type=int, default=16)
    parser.add_argument("--transfers", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
