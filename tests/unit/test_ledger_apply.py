"""The ledger's pure rules (``apply_batch``): random histories keep the books balanced, and each
outcome has an example that produces it.

The database tests (test_ledger.py) show the stores persist what ``apply_batch`` decides; this
file holds the rules themselves to their invariants, over histories no one would write by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backend.ledger.apply import MICROS, BatchResult, apply_batch
from backend.ledger.assets import MAX_UNITS
from backend.ledger.domain import (
    SYSTEM_SHARDS,
    AccountFlags,
    AccountSpec,
    Balance,
    Metadata,
    Outcome,
    Transfer,
    TransferKind,
    TransferRequest,
    system_account,
    user_account,
)

USERS = (1, 2, 3)
ASSETS = ("PTS", "USDT")
# Each kind draws its ids from six, overlapping the next kind's by two: few enough that ids
# recur (clashes, also across kinds; posts naming transfers that are not pending), enough that
# most requests are new.
IDS = tuple(f"t{n}" for n in range(14))
KIND_IDS = {
    TransferKind.POSTED: IDS[0:6],
    TransferKind.PENDING: IDS[4:10],
    TransferKind.POST: IDS[8:14],
    TransferKind.VOID: IDS[8:14],
}
NOW = 1_700_000_000 * MICROS
TIMEOUT = 60
# Batches of a history are 0 or 45 s apart: pendings with a 60 s timeout expire between some
# batches, and never within a few microseconds of a batch's time (where removing a request, and
# so shifting the timestamps after it, could move a post across its pending's deadline).
GAPS = (0, 45 * MICROS)


def treasury(asset: str) -> str:
    return system_account("treasury", asset)


def fresh_accounts() -> dict[str, Balance]:
    """Every account the histories can name: users, and each shard of the treasury."""
    keys = [user_account(user, asset) for asset in ASSETS for user in USERS]
    keys += [f"{treasury(asset)}:{shard}" for asset in ASSETS for shard in range(SYSTEM_SHARDS)]
    accounts = {}
    for number, key in enumerate(keys, start=1):
        spec = AccountSpec.parse(key)
        accounts[key] = Balance(number, key, spec.asset, spec.flags)
    return accounts


@dataclass
class Book:
    """What a store keeps between batches: balances, transfers, resolutions."""

    accounts: dict[str, Balance] = field(default_factory=fresh_accounts)
    known: dict[str, Transfer] = field(default_factory=dict)
    resolved: dict[str, TransferKind] = field(default_factory=dict)
    created: list[Transfer] = field(default_factory=list)

    def trial(self, batch: Sequence[TransferRequest], now: int) -> BatchResult:
        """The batch's result, leaving the book as it was."""
        return apply_batch(batch, self.accounts, self.known, self.resolved, now)

    def apply(self, batch: Sequence[TransferRequest], now: int) -> BatchResult:
        result = self.trial(batch, now)
        self.accounts = result.balances
        for transfer in result.created:
            self.known[transfer.id] = transfer
            if transfer.pending_id is not None:
                self.resolved[transfer.pending_id] = transfer.kind
        self.created += result.created
        return result


def counters(accounts: dict[str, Balance]) -> dict[str, tuple[int, int, int, int]]:
    return {
        key: (b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted)
        for key, b in accounts.items()
    }


def chains(batch: Sequence[TransferRequest]) -> list[list[int]]:
    """Positions of each linked chain; a chain left open at the end is closed."""
    found: list[list[int]] = [[]]
    for index, request in enumerate(batch):
        found[-1].append(index)
        if not request.linked:
            found.append([])
    return [chain for chain in found if chain]


# --- random histories -----------------------------------------------------------------------


# Kinds as often as a history needs them: posted and pending transfers to move and reserve,
# posts and voids to resolve them.
KINDS = [TransferKind.POSTED] * 3 + [TransferKind.PENDING] * 3 + [TransferKind.POST] * 2
KINDS += [TransferKind.VOID]


@st.composite
def transfer_requests(draw: st.DrawFn, pendings: Sequence[str] = ()) -> TransferRequest:
    """A request; a post or void names one of ``pendings`` (ids asked to be pending) half the
    time."""
    kind = draw(st.sampled_from(KINDS))
    transfer_id = draw(st.sampled_from(KIND_IDS[kind]))
    linked = draw(st.integers(0, 3)) == 0
    code = draw(st.sampled_from(("test", "test", "other")))
    metadata = draw(st.sampled_from(({}, {}, {"n": 1})))
    if kind in (TransferKind.POST, TransferKind.VOID):
        named = IDS
        if draw(st.booleans()) and pendings:
            named = tuple(pendings)
        return TransferRequest(
            transfer_id,
            code,
            # A void names all or nothing of the pending amount; a post may name too much.
            draw(st.sampled_from((0, 0, 0, 40) if kind is TransferKind.VOID else (0, 10, 40, 400))),
            kind=kind,
            pending_id=draw(st.sampled_from(named)),
            metadata=metadata,
            linked=linked,
        )
    asset = draw(st.sampled_from(ASSETS))
    # The treasury is named twice as often as each user, so users are funded often enough for
    # their spending to succeed as well as fail.
    names = [treasury(asset), treasury(asset)] + [user_account(u, asset) for u in USERS]
    debit = draw(st.sampled_from(names))
    if draw(st.integers(0, 15)) == 0:
        credit = debit
    elif draw(st.integers(0, 15)) == 0:
        other = ASSETS[1 - ASSETS.index(asset)]
        credit = draw(st.sampled_from([treasury(other)] + [user_account(u, other) for u in USERS]))
    else:
        credit = draw(st.sampled_from([name for name in names if name != debit]))
    return TransferRequest(
        transfer_id,
        code,
        draw(st.integers(1, 300)),
        debit,
        credit,
        asset,
        kind=kind,
        timeout=TIMEOUT if kind is TransferKind.PENDING and draw(st.booleans()) else 0,
        metadata=metadata,
        linked=linked,
    )


History = list[tuple[int, list[TransferRequest]]]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """Up to five batches; a fifth of the requests repeat an earlier one exactly (a retry)."""
    history: History = []
    drawn: list[TransferRequest] = []
    for _ in range(draw(st.integers(1, 5))):
        batch = []
        for _ in range(draw(st.integers(1, 12))):
            if drawn and draw(st.integers(0, 4)) == 0:
                batch.append(draw(st.sampled_from(drawn)))
            else:
                pendings = [r.id for r in drawn if r.kind is TransferKind.PENDING]
                request = draw(transfer_requests(pendings))
                batch.append(request)
                drawn.append(request)
        history.append((draw(st.sampled_from(GAPS)), batch))
    return history


def recomputed(book: Book) -> dict[str, tuple[int, int, int, int]]:
    """Every account's counters, from the transfers created alone."""
    keys = {balance.id: key for key, balance in book.accounts.items()}
    moved = {key: [0, 0, 0, 0] for key in book.accounts}
    pendings = {t.id: t for t in book.created if t.kind is TransferKind.PENDING}
    resolved = {t.pending_id for t in book.created if t.pending_id is not None}
    for transfer in book.created:
        debit, credit = (
            moved[keys[transfer.debit_account_id]],
            moved[keys[transfer.credit_account_id]],
        )
        if transfer.kind is TransferKind.PENDING and transfer.id not in resolved:
            debit[0] += transfer.amount
            credit[2] += transfer.amount
        elif transfer.kind in (TransferKind.POSTED, TransferKind.POST):
            debit[1] += transfer.amount
            credit[3] += transfer.amount
        if transfer.pending_id is not None:
            pending = pendings[transfer.pending_id]
            assert (pending.debit_account_id, pending.credit_account_id) == (
                transfer.debit_account_id,
                transfer.credit_account_id,
            )
            assert transfer.amount <= pending.amount
    return {key: (m[0], m[1], m[2], m[3]) for key, m in moved.items()}


def check_book(book: Book) -> None:
    """What verify checks in the database, here after every batch."""
    for asset in ASSETS:
        held = [b for b in book.accounts.values() if b.asset == asset]
        assert sum(b.debits_posted for b in held) == sum(b.credits_posted for b in held)
        assert sum(b.debits_pending for b in held) == sum(b.credits_pending for b in held)
    for balance in book.accounts.values():
        assert balance.violation() is None, balance
        b = balance
        assert min(b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted) >= 0, b
        if balance.key.startswith("user:"):
            assert balance.available >= 0, balance
    assert counters(book.accounts) == recomputed(book)
    ids = Counter(t.id for t in book.created)
    assert max(ids.values(), default=1) == 1
    resolutions = Counter(t.pending_id for t in book.created if t.pending_id is not None)
    assert max(resolutions.values(), default=1) == 1


def check_result(batch: Sequence[TransferRequest], result: BatchResult) -> None:
    assert len(result.outcomes) == len(result.transfers) == len(batch)
    for request, outcome, transfer in zip(batch, result.outcomes, result.transfers, strict=True):
        assert (transfer is not None) == outcome.ok
        if transfer is not None:
            assert transfer.id == request.id
    created = [
        t for t, o in zip(result.transfers, result.outcomes, strict=True) if o is Outcome.CREATED
    ]
    assert created == result.created
    for positions in chains(batch):
        outcomes = [result.outcomes[p] for p in positions]
        if not all(outcome.ok for outcome in outcomes):
            # A failed chain: one cause, every other member failed because of it.
            causes = [o for o in outcomes if o is not Outcome.LINKED_EVENT_FAILED]
            assert len(causes) == 1 and not causes[0].ok, outcomes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_random_histories_keep_the_books(history: History) -> None:
    """Whatever is asked, in whatever order: debits equal credits, no user goes below zero,
    counters are the sum of the transfers, a pending is resolved once, and a failed linked
    chain changes nothing."""
    book = Book()
    now = NOW
    succeeded: list[list[TransferRequest]] = []
    for gap, batch in history:
        now += gap + 1000
        before = counters(book.accounts)
        before_known = dict(book.known)
        result = book.trial(batch, now)
        # Pure: the inputs are untouched (the service diffs them against the result).
        assert counters(book.accounts) == before and book.known == before_known
        again = book.trial(batch, now)
        assert again.outcomes == result.outcomes and again.created == result.created
        check_result(batch, result)
        for request, outcome in zip(batch, result.outcomes, strict=True):
            event(f"{request.kind.value}: {outcome.value}")

        # Dropping the failed chains from the batch gives the very same result.
        kept = [
            index
            for positions in chains(batch)
            if all(result.outcomes[p].ok for p in positions)
            for index in positions
        ]
        without = book.trial([batch[i] for i in kept], now)
        assert without.outcomes == [result.outcomes[i] for i in kept]
        assert [t.id for t in without.created] == [t.id for t in result.created]
        assert counters(without.balances) == counters(result.balances)
        succeeded.append([batch[i] for i in kept])

        book.apply(batch, now)
        check_book(book)

        # Resubmitting the batch at once: everything that succeeded is now EXISTS.
        retry = book.trial(batch, now + 1000)
        for outcome, outcome_again in zip(result.outcomes, retry.outcomes, strict=True):
            if outcome.ok:
                assert outcome_again is Outcome.EXISTS

    # Much later (every pending expired), each batch's successful chains again: all EXISTS,
    # nothing moves.
    final = counters(book.accounts)
    for replay in succeeded:
        result = book.apply(replay, now + 10 * TIMEOUT * MICROS)
        assert all(outcome is Outcome.EXISTS for outcome in result.outcomes), result.outcomes
        assert result.created == []
    assert counters(book.accounts) == final


# --- one example per outcome ----------------------------------------------------------------

U1, U2 = user_account(1, "PTS"), user_account(2, "PTS")
CAPPED = user_account(3, "PTS")
"""Given the flag no key carries (credits may not exceed debits) to reach EXCEEDS_DEBITS."""


def posted(
    transfer_id: str,
    amount: int,
    debit: str,
    credit: str,
    *,
    metadata: Metadata | None = None,
    linked: bool = False,
) -> TransferRequest:
    return TransferRequest(
        transfer_id, "test", amount, debit, credit, "PTS", metadata=metadata or {}, linked=linked
    )


def post(
    transfer_id: str, pending_id: str, amount: int = 0, *, debit: str | None = None
) -> TransferRequest:
    return TransferRequest(
        transfer_id, "test", amount, debit, kind=TransferKind.POST, pending_id=pending_id
    )


def void(transfer_id: str, pending_id: str, amount: int = 0) -> TransferRequest:
    return TransferRequest(
        transfer_id, "test", amount, kind=TransferKind.VOID, pending_id=pending_id
    )


def example_book() -> Book:
    """User 1 holds 100 PTS, 30 of them reserved for user 2 for 60 s."""
    book = Book()
    capped = book.accounts[CAPPED]
    capped.flags = AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    fund = posted("fund", 100, treasury("PTS"), U1)
    hold = TransferRequest(
        "hold", "test", 30, U1, U2, "PTS", kind=TransferKind.PENDING, timeout=TIMEOUT
    )
    assert book.apply([fund, hold], NOW).outcomes == [Outcome.CREATED] * 2
    return book


# Each case: batches applied one after another (with a delay in seconds), and the outcomes of
# the last.
Case = tuple[list[tuple[int, list[TransferRequest]]], list[Outcome]]
CASES: dict[str, Case] = {
    "created": ([(0, [posted("a", 70, U1, U2)])], [Outcome.CREATED]),
    "exists": ([(0, [posted("fund", 100, treasury("PTS"), U1)])], [Outcome.EXISTS]),
    "exists_with_different_fields": (
        [(0, [posted("fund", 100, treasury("PTS"), U1, metadata={"n": 1})])],
        [Outcome.EXISTS_WITH_DIFFERENT_FIELDS],
    ),
    "linked_event_failed": (
        [(0, [posted("a", 60, U1, U2, linked=True), posted("b", 20, U1, U2)])],
        [Outcome.LINKED_EVENT_FAILED, Outcome.EXCEEDS_CREDITS],
    ),
    "accounts_must_be_different": (
        [(0, [posted("a", 1, U1, U1)])],
        [Outcome.ACCOUNTS_MUST_BE_DIFFERENT],
    ),
    "asset_mismatch": (
        [(0, [posted("a", 1, U1, user_account(2, "USDT"))])],
        [Outcome.ASSET_MISMATCH],
    ),
    "exceeds_credits": ([(0, [posted("a", 71, U1, U2)])], [Outcome.EXCEEDS_CREDITS]),
    "exceeds_debits": (
        [(0, [posted("a", 1, treasury("PTS"), CAPPED)])],
        [Outcome.EXCEEDS_DEBITS],
    ),
    "overflow": (
        [
            (0, [posted("a", MAX_UNITS - 100, treasury("PTS"), U1)]),
            (0, [posted("b", 1, treasury("PTS"), U1)]),
        ],
        [Outcome.OVERFLOW],
    ),
    "pending_transfer_not_found": ([(0, [post("a", "nope")])], [Outcome.PENDING_NOT_FOUND]),
    "pending_transfer_not_pending": (
        [(0, [post("a", "fund")])],
        [Outcome.PENDING_NOT_PENDING],
    ),
    "pending_transfer_already_posted": (
        [(0, [post("a", "hold", 10)]), (0, [void("b", "hold")])],
        [Outcome.PENDING_ALREADY_POSTED],
    ),
    "pending_transfer_already_voided": (
        [(0, [void("a", "hold")]), (0, [post("b", "hold")])],
        [Outcome.PENDING_ALREADY_VOIDED],
    ),
    "pending_transfer_expired": ([(TIMEOUT, [post("a", "hold")])], [Outcome.PENDING_EXPIRED]),
    "pending_transfer_fields_differ": (
        [(0, [post("a", "hold", debit=U2), void("b", "hold", 5)])],
        [Outcome.PENDING_FIELDS_DIFFER, Outcome.PENDING_FIELDS_DIFFER],
    ),
    "exceeds_pending_transfer_amount": (
        [(0, [post("a", "hold", 31)])],
        [Outcome.EXCEEDS_PENDING_AMOUNT],
    ),
}


def test_every_outcome_has_an_example() -> None:
    assert {outcome for _, expected in CASES.values() for outcome in expected} == set(Outcome)


@pytest.mark.parametrize("name", CASES)
def test_outcome_example(name: str) -> None:
    """The named outcome, and a refusal moves nothing."""
    batches, expected = CASES[name]
    book = example_book()
    now = NOW
    for delay, batch in batches:
        now += delay * MICROS + 1000
        before = counters(book.accounts)
        result = book.apply(batch, now)
    assert result.outcomes == expected
    if not any(outcome.ok for outcome in expected):
        assert counters(book.accounts) == before and result.created == []


def test_retried_post_and_void_are_exists_not_a_conflict() -> None:
    """A post or void resolves its pending transfer, so its retry finds it resolved: that is
    the retry's own doing, and the answer must be EXISTS, also once the pending has expired."""
    book = example_book()
    other = TransferRequest("hold2", "test", 20, U1, U2, "PTS", kind=TransferKind.PENDING)
    resolve = [post("p", "hold", 10), other, void("v", "hold2")]
    assert book.apply(resolve, NOW + 1000).outcomes == [Outcome.CREATED] * 3
    final = counters(book.accounts)
    later = NOW + 2 * TIMEOUT * MICROS
    retried = book.apply(resolve, later)
    assert retried.outcomes == [Outcome.EXISTS] * 3
    assert counters(book.accounts) == final
    # The same id naming other fields is still a conflict, not a retry.
    assert book.apply([post("p", "hold", 20)], later).outcomes == [
        Outcome.EXISTS_WITH_DIFFERENT_FIELDS
    ]


def test_partial_post_releases_the_rest_and_void_releases_all() -> None:
    book = example_book()
    assert book.accounts[U1].available == 70
    book.apply([post("p", "hold", 10)], NOW + 1000)
    u1, u2 = book.accounts[U1], book.accounts[U2]
    assert (u1.balance, u1.available, u1.debits_pending) == (90, 90, 0)
    assert (u2.balance, u2.credits_pending) == (10, 0)

    book = example_book()
    book.apply([void("v", "hold")], NOW + 1000)
    assert (book.accounts[U1].balance, book.accounts[U1].available) == (100, 100)
    assert book.accounts[U2].balance == 0


def test_an_expired_pending_can_still_be_voided() -> None:
    """Expiry is recorded by voiding: the sweeper must be able to void what it finds expired."""
    book = example_book()
    later = NOW + TIMEOUT * MICROS + 1
    assert book.apply([post("p", "hold")], later).outcomes == [Outcome.PENDING_EXPIRED]
    assert book.apply([void("v", "hold")], later).outcomes == [Outcome.CREATED]
    assert book.accounts[U1].available == 100


def test_a_failed_chain_undoes_its_pending_and_post() -> None:
    """A pending and its post in one chain: the post succeeds, the chain's last transfer fails,
    and neither the reservation nor the post remains."""
    book = example_book()
    before = counters(book.accounts)
    chain = [
        TransferRequest("h", "test", 50, U1, U2, "PTS", kind=TransferKind.PENDING, linked=True),
        TransferRequest("p", "test", kind=TransferKind.POST, pending_id="h", linked=True),
        posted("x", 50, U1, U2),
    ]
    result = book.apply(chain, NOW + 1000)
    assert result.outcomes == [
        Outcome.LINKED_EVENT_FAILED,
        Outcome.LINKED_EVENT_FAILED,
        Outcome.EXCEEDS_CREDITS,
    ]
    assert result.created == [] and counters(book.accounts) == before
    assert "h" not in book.known
    # Without the failing transfer the same chain goes through.
    result = book.apply([*chain[:2], posted("y", 5, U1, U2)], NOW + 2000)
    assert result.outcomes == [Outcome.CREATED] * 3
    assert book.accounts[U1].available == 100 - 30 - 50 - 5


def test_a_chain_left_open_at_the_end_of_a_batch_is_closed() -> None:
    book = example_book()
    result = book.apply([posted("a", 10, U1, U2, linked=True)], NOW + 1000)
    assert result.outcomes == [Outcome.CREATED]
