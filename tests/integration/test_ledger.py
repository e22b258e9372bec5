"""The ledger on a real database: the same test bodies on SQLite and PostgreSQL.

What the pure rules decide (test_ledger_apply.py) must survive the stores: idempotent retries,
refusals that roll back, linked batches, pending transfers and their expiry, the database's own
guards (check constraints, append-only transfers), ``verify`` catching tampering, and many
writers on the same hot accounts at once.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from backend.auth.signin import sign_in
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.ledger import service
from backend.ledger.domain import (
    SYSTEM_SHARDS,
    Outcome,
    TransferKind,
    TransferRequest,
    shard_key,
    system_account,
    user_account,
)
from backend.ledger.service import Ledger, TransferRefused, now_micros
from backend.ledger.verify import verify
from backend.users.service import TelegramProfile
from tests.helpers import counters, open_database

TREASURY = system_account("treasury", "PTS")
FEES = system_account("fees", "PTS")
MICROS = 1_000_000


async def make_users(db: Database, count: int) -> list[int]:
    """User accounts need a users row (a foreign key): real sign-ins make them."""
    ids = []
    async with unit_of_work(db) as uow:
        for n in range(count):
            user = (await sign_in(uow, TelegramProfile(5_000_000 + n, f"user{n}"))).user
            assert user.id is not None
            ids.append(user.id)
    return ids


def pts(user_id: int) -> str:
    return user_account(user_id, "PTS")


def move(transfer_id: str, amount: int, debit: str, credit: str, **extra: Any) -> TransferRequest:
    return TransferRequest(transfer_id, "test", amount, debit, credit, "PTS", **extra)


def resolve(
    transfer_id: str, kind: TransferKind, pending_id: str, amount: int = 0
) -> TransferRequest:
    return TransferRequest(transfer_id, "test", amount, kind=kind, pending_id=pending_id)


async def balance(db: Database, key: str) -> tuple[int, int]:
    """(balance, available) of a user account."""
    dp, dpo, _cp, cpo = (await counters(db))[key]
    return cpo - dpo, cpo - dpo - dp


async def stored_ids(db: Database) -> list[str]:
    async with db.engine.connect() as connection:
        return list((await connection.execute(text("SELECT id FROM ledger_transfers"))).scalars())


async def execute(db: Database, *statements: str, **params: Any) -> None:
    async with db.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement), params)


async def assert_verified(db: Database) -> None:
    report = await verify(db)
    assert report.ok, report.problems
    assert report.chains == 8


async def funded(db: Database, users: Sequence[int], amount: int = 100) -> None:
    batch = [move(f"fund-{user}", amount, TREASURY, pts(user)) for user in users]
    result = await Ledger().submit_batch(db, batch)
    assert result.outcomes == [Outcome.CREATED] * len(users)


# --- the contract, on both databases --------------------------------------------------------


async def test_ids_are_idempotency_keys(db: Database) -> None:
    """A retried batch records nothing new; the same id asking for something else is refused."""
    u1, u2 = await make_users(db, 2)
    ledger = Ledger()
    batch = [move(f"t{n}", 10, TREASURY, pts(u1), metadata={"n": n}) for n in range(10)]
    batch.append(move("spend", 25, pts(u1), pts(u2)))
    first = await ledger.submit_batch(db, batch)
    assert first.outcomes == [Outcome.CREATED] * 11 and first.created == 11
    state = await counters(db)

    again = await ledger.submit_batch(db, batch)
    assert again.outcomes == [Outcome.EXISTS] * 11 and again.created == 0
    assert [t.id for t in again.transfers if t] == [t.id for t in first.transfers if t]
    changed = [
        move("t0", 11, TREASURY, pts(u1), metadata={"n": 0}),
        move("t1", 10, TREASURY, pts(u2), metadata={"n": 1}),
        move("t2", 10, TREASURY, pts(u1)),
        move("spend", 25, pts(u1), pts(u2), kind=TransferKind.PENDING),
    ]
    refused = await ledger.submit_batch(db, changed)
    assert refused.outcomes == [Outcome.EXISTS_WITH_DIFFERENT_FIELDS] * 4
    assert await counters(db) == state
    assert len(await stored_ids(db)) == 11
    assert await balance(db, pts(u1)) == (75, 75)
    await assert_verified(db)


async def test_strict_submit_refuses_and_rolls_back_the_unit_of_work(db: Database) -> None:
    """A refused transfer takes the whole transaction with it, accepted transfers included."""
    u1, u2 = await make_users(db, 2)
    await funded(db, [u1])
    ledger = Ledger()

    async def two_submits() -> None:
        async with unit_of_work(db) as uow:
            done = await ledger.submit(uow, [move("ok", 60, pts(u1), pts(u2))])
            assert done.outcomes == [Outcome.CREATED]
            await ledger.submit(uow, [move("too-much", 41, pts(u1), pts(u2))])

    with pytest.raises(TransferRefused) as refusal:
        await two_submits()
    assert refusal.value.code == "insufficient_funds"
    assert refusal.value.outcome is Outcome.EXCEEDS_CREDITS
    assert refusal.value.request.id == "too-much"
    assert sorted(await stored_ids(db)) == [f"fund-{u1}"]
    assert await balance(db, pts(u1)) == (100, 100)

    async with unit_of_work(db) as uow:
        await ledger.submit(uow, [move("ok", 60, pts(u1), pts(u2))])
        await ledger.submit(uow, [move("rest", 40, pts(u1), pts(u2))])
    assert await balance(db, pts(u1)) == (0, 0)
    assert await balance(db, pts(u2)) == (100, 100)
    await assert_verified(db)


async def test_a_linked_chain_succeeds_or_fails_as_one(db: Database) -> None:
    u1, u2, u3 = await make_users(db, 3)
    await funded(db, [u1])
    chain = [
        move("a", 50, pts(u1), pts(u2), linked=True),
        move("b", 50, pts(u2), pts(u3), linked=True),
        move("c", 51, pts(u1), pts(u3)),
    ]
    result = await Ledger().submit_batch(db, [*chain, move("d", 5, pts(u1), pts(u3))])
    assert result.outcomes == [
        Outcome.LINKED_EVENT_FAILED,
        Outcome.LINKED_EVENT_FAILED,
        Outcome.EXCEEDS_CREDITS,
        Outcome.CREATED,
    ]
    assert sorted(await stored_ids(db)) == ["d", f"fund-{u1}"]
    assert await balance(db, pts(u2)) == (0, 0)

    fixed = [*chain[:2], move("c", 45, pts(u1), pts(u3))]
    result = await Ledger().submit_batch(db, fixed)
    assert result.outcomes == [Outcome.CREATED] * 3
    assert [await balance(db, pts(u)) for u in (u1, u2, u3)] == [(0, 0), (0, 0), (100, 100)]
    await assert_verified(db)


async def test_pending_post_void_and_double_resolution(db: Database) -> None:
    u1, u2 = await make_users(db, 2)
    await funded(db, [u1])
    ledger = Ledger()
    holds = [
        move("h1", 50, pts(u1), pts(u2), kind=TransferKind.PENDING, timeout=600),
        move("h2", 30, pts(u1), pts(u2), kind=TransferKind.PENDING),
    ]
    assert (await ledger.submit_batch(db, holds)).created == 2
    assert await balance(db, pts(u1)) == (100, 20)
    over = await ledger.submit_batch(db, [move("x", 21, pts(u1), pts(u2))])
    assert over.outcomes == [Outcome.EXCEEDS_CREDITS]

    post = resolve("p1", TransferKind.POST, "h1", 20)
    void = resolve("v2", TransferKind.VOID, "h2")
    assert (await ledger.submit_batch(db, [post, void])).created == 2
    assert await balance(db, pts(u1)) == (80, 80)
    assert await balance(db, pts(u2)) == (20, 20)

    again = await ledger.submit_batch(
        db,
        [
            resolve("v1", TransferKind.VOID, "h1"),
            resolve("p2", TransferKind.POST, "h2"),
            post,
            void,
            resolve("p1", TransferKind.POST, "h1", 30),
        ],
    )
    assert again.outcomes == [
        Outcome.PENDING_ALREADY_POSTED,
        Outcome.PENDING_ALREADY_VOIDED,
        Outcome.EXISTS,
        Outcome.EXISTS,
        Outcome.EXISTS_WITH_DIFFERENT_FIELDS,
    ]
    with pytest.raises(TransferRefused) as refusal:
        async with unit_of_work(db) as uow:
            await ledger.submit(uow, [resolve("p3", TransferKind.POST, "h1")])
    assert refusal.value.code == Outcome.PENDING_ALREADY_POSTED.value
    assert await balance(db, pts(u1)) == (80, 80)
    await assert_verified(db)


async def test_expiry_voids_a_pending_transfer_and_its_post_then_fails(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    u1, u2 = await make_users(db, 2)
    await funded(db, [u1])
    ledger = Ledger()
    holds = [
        move("h1", 40, pts(u1), pts(u2), kind=TransferKind.PENDING, timeout=60),
        move("h2", 10, pts(u1), pts(u2), kind=TransferKind.PENDING, timeout=3600),
    ]
    await ledger.submit_batch(db, holds)
    assert await ledger.expire(db) == 0

    # Past h1's deadline but before the sweeper ran: the post is refused all the same.
    later = now_micros() + 61 * MICROS
    monkeypatch.setattr(service, "now_micros", lambda: later)
    late = await ledger.submit_batch(db, [resolve("p1", TransferKind.POST, "h1")])
    assert late.outcomes == [Outcome.PENDING_EXPIRED]
    monkeypatch.undo()

    # Two sweepers at once void it once.
    voided = await asyncio.gather(ledger.expire(db, now=later), ledger.expire(db, now=later))
    assert sorted(voided) == [0, 1]
    assert await ledger.expire(db, now=later) == 0
    assert await balance(db, pts(u1)) == (100, 90)
    post = await ledger.submit_batch(db, [resolve("p1", TransferKind.POST, "h1")])
    assert post.outcomes == [Outcome.PENDING_ALREADY_VOIDED]
    assert (await ledger.submit_batch(db, [resolve("p2", TransferKind.POST, "h2")])).created == 1
    assert await balance(db, pts(u2)) == (10, 10)
    await assert_verified(db)


async def test_expiry_voids_pendings_whose_long_ids_share_a_prefix(db: Database) -> None:
    """Ids are up to 64 characters: the void's id must differ for each, however long."""
    u1, u2 = await make_users(db, 2)
    await funded(db, [u1])
    ids = ["x" * 63 + "1", "x" * 63 + "2"]
    holds = [move(i, 10, pts(u1), pts(u2), kind=TransferKind.PENDING, timeout=1) for i in ids]
    ledger = Ledger()
    await ledger.submit_batch(db, holds)
    later = now_micros() + 2 * MICROS
    assert await ledger.expire(db, now=later) + await ledger.expire(db, now=later) == 2
    assert await balance(db, pts(u1)) == (100, 100)
    await assert_verified(db)


async def test_check_constraints_refuse_a_negative_user_balance_even_from_raw_sql(
    db: Database,
) -> None:
    (u1,) = await make_users(db, 1)
    await funded(db, [u1])
    for statement in (
        "UPDATE ledger_accounts SET debits_posted = credits_posted + 1 WHERE key = :key",
        "UPDATE ledger_accounts SET debits_pending = credits_posted + 1 WHERE key = :key",
        "UPDATE ledger_accounts SET credits_posted = -1 WHERE key LIKE 'sys:%'",
    ):
        with pytest.raises(IntegrityError):
            await execute(db, statement, key=pts(u1))
    assert await balance(db, pts(u1)) == (100, 100)
    await assert_verified(db)


async def test_transfers_are_append_only(db: Database) -> None:
    (u1,) = await make_users(db, 1)
    await funded(db, [u1])
    statements = [
        "UPDATE ledger_transfers SET amount = 1000",
        "UPDATE ledger_transfers SET code = 'edited'",
        "DELETE FROM ledger_transfers",
    ]
    if db.dialect == "postgresql":
        statements.append("TRUNCATE ledger_transfers CASCADE")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            await execute(db, statement)
    assert await stored_ids(db) == [f"fund-{u1}"]
    with pytest.raises(DBAPIError, match="never deleted"):
        await execute(db, "DELETE FROM ledger_accounts WHERE key = :key", key=pts(u1))
    await assert_verified(db)


def unguard(db: Database) -> list[str]:
    """Statements dropping the append-only triggers: tampering is what verify must catch."""
    if db.dialect == "sqlite":
        return [
            "DROP TRIGGER ledger_transfers_no_update",
            "DROP TRIGGER ledger_transfers_no_delete",
        ]
    return ["DROP TRIGGER ledger_transfers_append_only ON ledger_transfers"]


async def history(db: Database) -> list[int]:
    """Some ordinary use: funding, moves, a posted and a voided pending."""
    users = await make_users(db, 3)
    await funded(db, users)
    u1, u2, u3 = users
    ledger = Ledger()
    await ledger.submit_batch(
        db,
        [
            move("m1", 30, pts(u1), pts(u2)),
            move("m2", 500, pts(u1), pts(u2)),  # refused: leaves nothing behind
            move("h1", 40, pts(u2), pts(u3), kind=TransferKind.PENDING),
            move("h2", 10, pts(u3), pts(u1), kind=TransferKind.PENDING),
        ],
    )
    await ledger.submit_batch(
        db,
        [
            resolve("p1", TransferKind.POST, "h1", 25),
            resolve("v2", TransferKind.VOID, "h2"),
            move("m3", 5, pts(u3), TREASURY),
        ],
    )
    return users


# Each: how to tamper, and what verify must then say.
TAMPERING: dict[str, tuple[list[str], list[str]]] = {
    "altered amount": (
        ["UPDATE ledger_transfers SET amount = amount + 1 WHERE id = 'm1'"],
        [r"transfer m1 was altered", r"user:\d+:PTS: counters differ"],
    ),
    "deleted transfer": (
        ["DELETE FROM ledger_transfers WHERE id = 'm3'"],
        [
            r"chain \d+: (ends at \d+, its head says|transfer \S+ at \d+, expected)",
            r"counters differ",
        ],
    ),
    "transfer pointed at no account": (
        ["UPDATE ledger_transfers SET debit_account_id = 987654321 WHERE id = 'm1'"],
        [r"transfer m1: disagrees with its accounts", r"transfer m1 was altered"],
    ),
    "edited counter": (
        ["UPDATE ledger_accounts SET credits_posted = credits_posted + 7 WHERE key LIKE 'user:%'"],
        [r"PTS: debits \d+ \+ pending \d+ != credits", r"counters differ"],
    ),
}


@pytest.mark.parametrize("tampering", TAMPERING)
async def test_verify_passes_after_use_and_catches_tampering(db: Database, tampering: str) -> None:
    await history(db)
    await assert_verified(db)
    statements, findings = TAMPERING[tampering]
    await execute(db, *unguard(db), *statements)
    report = await verify(db)
    assert not report.ok
    for finding in findings:
        assert any(re.search(finding, problem) for problem in report.problems), (
            finding,
            report.problems,
        )
    assert report.summary().startswith(f"ledger verify: FAILED ({len(report.problems)} problems)")


async def test_verify_catches_a_transfer_removed_from_the_middle_of_a_chain(
    db: Database,
) -> None:
    await history(db)
    async with db.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT t.id, t.chain FROM ledger_transfers t WHERE t.pending_id IS NULL "
                    "AND t.kind = 'posted' AND EXISTS (SELECT 1 FROM ledger_transfers n "
                    "WHERE n.chain = t.chain AND n.chain_seq > t.chain_seq) LIMIT 1"
                )
            )
        ).one()
    await execute(db, *unguard(db), "DELETE FROM ledger_transfers WHERE id = :id", id=row.id)
    problems = (await verify(db)).problems
    assert any(f"chain {row.chain}:" in p and "missing" in p for p in problems), problems


# --- many writers at once (PostgreSQL: SQLite has one writer by design) ---------------------

# Hot accounts: few enough that nearly every batch waits on another's row locks.
HOT_USERS = 5
COLD_USERS = 10
CONTESTED = 20
CLASHES = 10
WRITERS = 80
REQUESTS_PER_WRITER = 13  # 80 x 13 = 1,040 distinct transfers
# Connections: fewer than writers, so batches also queue for the pool; pool_size plus as many
# overflow stays well under PostgreSQL's default max_connections of 100.
POOL_SIZE = 25


def funding(users: Sequence[int]) -> list[TransferRequest]:
    """Funding transfers whose ids land on every treasury shard."""
    batch: list[TransferRequest] = []
    shards: set[str] = set()
    n = 0
    while len(shards) < SYSTEM_SHARDS or len(batch) < 4 * len(users):
        user = users[n % len(users)]
        request = move(f"fund-{n}", 100, TREASURY, pts(user))
        shards.add(shard_key(TREASURY, request.id))
        batch.append(request)
        n += 1
    return batch


def writer_requests(
    rng: random.Random, writer: int, users: Sequence[int], cold: Sequence[int]
) -> list[TransferRequest]:
    """A writer's transfers: moves among hot users (many too large), treasury in and out,
    pendings its own later requests post or void, voids of the next writer's transfers (racing
    its own resolution), and linked pairs."""
    requests: list[TransferRequest] = []
    pendings: list[TransferRequest] = []
    while len(requests) < REQUESTS_PER_WRITER:
        tid = f"w{writer}-{len(requests)}"
        a, b = rng.sample([pts(u) for u in users], 2)
        roll = rng.random()
        if roll < 0.40:
            requests.append(move(tid, rng.randint(1, 250), a, b))
        elif roll < 0.50:
            # Some to users who have no account yet: created while others write.
            credit = a if rng.random() < 0.7 else pts(rng.choice(cold))
            requests.append(move(tid, rng.randint(1, 60), TREASURY, credit))
        elif roll < 0.57:
            # The fees account's shards are created by the first transfers that reach them.
            requests.append(move(tid, rng.randint(1, 200), a, rng.choice((TREASURY, FEES))))
        elif roll < 0.72:
            pending = move(tid, rng.randint(1, 150), a, b, kind=TransferKind.PENDING)
            pendings.append(pending)
            requests.append(pending)
        elif roll < 0.78:
            # Another writer's transfer, maybe pending, maybe being posted by it right now.
            other = f"w{(writer + 1) % WRITERS}-{rng.randrange(REQUESTS_PER_WRITER)}"
            requests.append(resolve(tid, TransferKind.VOID, other))
        elif roll < 0.9 and pendings:
            pending = pendings.pop(0)
            if rng.random() < 0.5:
                requests.append(
                    resolve(tid, TransferKind.POST, pending.id, rng.randint(1, pending.amount))
                )
            else:
                requests.append(resolve(tid, TransferKind.VOID, pending.id))
        elif len(requests) + 2 <= REQUESTS_PER_WRITER:
            c = rng.choice([pts(u) for u in users if pts(u) not in (a, b)])
            requests.append(move(tid, rng.randint(1, 120), a, b, linked=True))
            requests.append(move(f"{tid}-l", rng.randint(1, 120), b, c))
    return requests


def split(rng: random.Random, requests: list[TransferRequest]) -> list[list[TransferRequest]]:
    """Small batches, never cutting a linked chain in two."""
    batches: list[list[TransferRequest]] = [[]]
    for request in requests:
        batches[-1].append(request)
        if not request.linked and len(batches[-1]) >= rng.randint(1, 3):
            batches.append([])
    return [batch for batch in batches if batch]


def expected_counters(created: dict[str, TransferRequest]) -> dict[str, list[int]]:
    """Each logical account's counters (dp, dpo, cp, cpo), from the transfers created."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    resolved = {r.pending_id for r in created.values() if r.pending_id is not None}
    for request in created.values():
        debit, credit, amount = request.debit, request.credit, request.amount
        if request.pending_id is not None:
            pending = created[request.pending_id]
            debit, credit, amount = pending.debit, pending.credit, amount or pending.amount
        assert debit is not None and credit is not None
        if request.kind is TransferKind.PENDING and request.id not in resolved:
            totals[debit][0] += amount
            totals[credit][2] += amount
        elif request.kind in (TransferKind.POSTED, TransferKind.POST):
            totals[debit][1] += amount
            totals[credit][3] += amount
    return totals


async def test_concurrent_writers_on_hot_accounts_keep_the_books(tmp_path: Path) -> None:
    """1,000 transfers from 80 concurrent writers over five hot accounts, a tenth of the
    batches sent again by another writer, pendings raced for, ids clashing, accounts created
    mid-run: every id is recorded once, no balance goes below zero, the balances are what
    the outcomes say, and verify passes."""
    rng = random.Random(20261124)
    async with AsyncExitStack() as stack:
        db = await open_database(stack, "postgres", tmp_path, pool_size=POOL_SIZE)
        users = await make_users(db, HOT_USERS + COLD_USERS)
        users, cold = users[:HOT_USERS], users[HOT_USERS:]
        ledger = Ledger()
        fund = funding(users)
        assert (await ledger.submit_batch(db, fund)).created == len(fund)
        # Contested pendings: two writers each, one posting and one voiding, race to resolve.
        contested = [
            move(f"c{k}", 10, pts(users[k % 5]), pts(users[(k + 1) % 5]), kind=TransferKind.PENDING)
            for k in range(CONTESTED)
        ]
        assert (await ledger.submit_batch(db, contested)).created == CONTESTED

        plans = [split(rng, writer_requests(rng, w, users, cold)) for w in range(WRITERS)]
        for k, pending in enumerate(contested):
            for writer, kind in ((k, TransferKind.POST), (k + CONTESTED, TransferKind.VOID)):
                race = resolve(f"c{k}-{kind.value}", kind, pending.id)
                plans[writer].insert(rng.randrange(len(plans[writer]) + 1), [race])
        # Clashing ids: one id, two different transfers on disjoint accounts, sent at once by
        # two writers.  They share no lock: when both are in flight, the loser's insert hits
        # the unique id and submit_batch runs it again; either way it finds the winner's.
        clashes = [
            (
                move(f"clash-{k}", 1, TREASURY, pts(cold[k % COLD_USERS])),
                move(f"clash-{k}", 1, FEES, pts(cold[(k + 1) % COLD_USERS])),
            )
            for k in range(CLASHES)
        ]
        for k, pair in enumerate(clashes):
            for offset, request in enumerate(pair):
                plans[2 * CONTESTED + 2 * k + offset].insert(0, [request])
        sent: list[list[TransferRequest]] = []
        results: list[tuple[list[TransferRequest], list[Outcome]]] = []
        refused_strict: list[TransferRefused] = []

        hot = {pts(user) for user in users}

        async def write(writer: int, batches: list[list[TransferRequest]]) -> None:
            wrng = random.Random(writer)
            for batch in batches:
                sent.append(batch)
                if writer % 8 == 0 and len(batch) == 1 and {batch[0].debit, batch[0].credit} <= hot:
                    # The strict path, as a request handler uses it: a refusal raises and
                    # nothing of the batch is kept.  (Only between existing accounts: a strict
                    # caller does its own retrying, which this test does not repeat.)
                    try:
                        async with unit_of_work(db) as uow:
                            done = await ledger.submit(uow, batch)
                        results.append((batch, done.outcomes))
                    except TransferRefused as refusal:
                        refused_strict.append(refusal)
                else:
                    done = await ledger.submit_batch(db, batch)
                    results.append((batch, done.outcomes))
                if wrng.random() < 0.1:
                    # Another writer's batch again: a client retrying, possibly while the
                    # first attempt is still in flight.
                    again = wrng.choice(sent)
                    results.append((again, (await ledger.submit_batch(db, again)).outcomes))
                await asyncio.sleep(0)

        await asyncio.gather(*(write(w, plan) for w, plan in enumerate(plans)))

        distinct = {r.id for plan in plans for batch in plan for r in batch}
        assert len(distinct) >= 1000
        creations: Counter[str] = Counter()
        created: dict[str, TransferRequest] = {r.id: r for r in [*fund, *contested]}
        outcomes: Counter[Outcome] = Counter()
        for batch, batch_outcomes in results:
            for request, outcome in zip(batch, batch_outcomes, strict=True):
                outcomes[outcome] += 1
                if outcome is Outcome.CREATED:
                    creations[request.id] += 1
                    created[request.id] = request
            chain_ok: list[bool] = []
            for request, outcome in zip(batch, batch_outcomes, strict=True):
                chain_ok.append(outcome.ok)
                if not request.linked:
                    assert len(set(chain_ok)) == 1, (batch, batch_outcomes)
                    chain_ok = []
        # Each id created by exactly one submission, and stored exactly once.
        assert max(creations.values()) == 1
        stored = await stored_ids(db)
        assert len(stored) == len(set(stored)) == len(created)
        assert set(stored) == set(created)
        # A busy run: plenty created, plenty refused, retries answered EXISTS.
        assert outcomes[Outcome.CREATED] > 300, outcomes
        assert outcomes[Outcome.EXCEEDS_CREDITS] > 50, outcomes
        assert outcomes[Outcome.EXISTS] > 10, outcomes
        assert outcomes[Outcome.LINKED_EVENT_FAILED] > 0, outcomes
        for pair in clashes:
            winner = created[pair[0].id]
            assert winner in pair
            answers = {(batch[0] == winner, got[0]) for batch, got in results if batch[0] in pair}
            assert (True, Outcome.CREATED) in answers
            assert (False, Outcome.EXISTS_WITH_DIFFERENT_FIELDS) in answers
            assert answers <= {
                (True, Outcome.CREATED),
                (True, Outcome.EXISTS),
                (False, Outcome.EXISTS_WITH_DIFFERENT_FIELDS),
            }
        # Each contested pending resolved once; each loser told so.
        resolutions = Counter(r.pending_id for r in created.values() if r.pending_id)
        assert all(resolutions[pending.id] == 1 for pending in contested)
        already = {Outcome.PENDING_ALREADY_POSTED, Outcome.PENDING_ALREADY_VOIDED}
        assert sum(outcomes[o] for o in already) >= CONTESTED
        assert refused_strict, "no strict submit was refused"
        assert {r.code for r in refused_strict} == {"insufficient_funds"}

        actual = await counters(db)
        assert FEES in actual and any(pts(user) in actual for user in cold)
        expected = expected_counters(created)
        assert {key: tuple(value) for key, value in expected.items()} == {
            key: value for key, value in actual.items() if any(value) or key in expected
        }
        for user in users:
            dp, dpo, _cp, cpo = actual[pts(user)]
            assert dp >= 0 and dpo + dp <= cpo
        await assert_verified(db)


async def test_cli_verify_reports_ok_and_exits_1_on_tampering(tmp_path: Path) -> None:
    """The console script an operator runs, against PostgreSQL."""
    script = Path(sys.executable).with_name("simplrefq")
    async with AsyncExitStack() as stack:
        db = await open_database(stack, "postgres", tmp_path)
        await history(db)
        env = {
            **os.environ,
            "DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "APP_DATA_DIR": str(tmp_path / "cli"),
        }

        async def run() -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                script,
                "ledger",
                "verify",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            assert process.returncode is not None
            return process.returncode, out.decode(), err.decode()

        code, out, err = await run()
        assert code == 0, err
        assert re.fullmatch(
            r"ledger verify: OK: 9 transfers, \d+ accounts, 8 chains in \d+\.\d\d s\n", out
        ), out

        await execute(db, "UPDATE ledger_accounts SET debits_posted = 0 WHERE key LIKE 'sys:%'")
        code, out, err = await run()
        assert code == 1
        assert re.fullmatch(r"ledger verify: FAILED \(\d+ problems\): 9 transfers, .*\n", out), out
        assert "PTS: debits" in err and "counters differ from the sum of its transfers" in err
