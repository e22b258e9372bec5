"""Points from trades (backend/points/volume.py) on a real database, both kinds.

The job pays a chunk of trades in one transaction and one ledger submit: first-trade awards,
volume awards, the referrers' shares and the shares a referee's activation releases.  A
transaction that submitted twice would take a ledger chain's head and then wait for more
accounts, which PostgreSQL answers with a deadlock against a writer doing the opposite.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text

from backend.auth.signin import sign_in
from backend.config import PointsSettings
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.ledger.domain import Balance, TransferRequest, user_account
from backend.ledger.service import Ledger
from backend.ledger.verify import verify
from backend.points.referrals import REWARDS_POOL
from backend.points.service import Points
from backend.points.volume import VolumePoints
from backend.trading.models import TradeRecord
from backend.users.service import TelegramProfile
from tests.helpers import counters

USDT = 1_000_000  # USDT's smallest units per whole USDT


async def user(db: Database, telegram_id: int, start_param: str | None = None) -> Any:
    async with unit_of_work(db) as uow:
        profile = TelegramProfile(telegram_id, f"u{telegram_id}")
        return (await sign_in(uow, profile, start_param=start_param)).user


def trade(n: int, maker: int, taker: int, value: int) -> TradeRecord:
    return TradeRecord(
        id=n,
        market="TON-USDT",
        price=value,
        qty=1,
        value=value,
        taker_side="buy",
        maker_order_id=2 * n,
        taker_order_id=2 * n + 1,
        maker_user_id=maker,
        taker_user_id=taker,
        maker_fee=0,
        taker_fee=0,
        at=datetime.now(UTC),
    )


async def points_balance(db: Database, user_id: int) -> int:
    _dp, dpo, _cp, cpo = (await counters(db)).get(user_account(user_id, "PTS"), (0, 0, 0, 0))
    return cpo - dpo


async def test_a_chunk_of_trades_is_paid_in_one_ledger_submit(db: Database) -> None:
    settings = PointsSettings()
    ledger = Ledger()
    points = Points(ledger, settings)
    batches: list[list[Balance]] = []

    async def committed(changed: list[Balance]) -> None:
        batches.append(changed)

    alice = await user(db, 7_100_001)
    bob = await user(db, 7_100_002, start_param=f"ref_{alice.referral_code}")
    carol = await user(db, 7_100_003)
    maker_bot = await user(db, 7_100_004)
    # Bob checks in while inactive: Alice's share of it waits for his first trade.
    async with unit_of_work(db) as uow:
        await points.checkin(uow, bob.id, date(2026, 12, 1))
    ledger.listen(committed)

    async with unit_of_work(db) as uow:
        uow.session.add_all(
            [
                trade(1, maker=carol.id, taker=bob.id, value=30 * USDT),
                trade(2, maker=maker_bot.id, taker=bob.id, value=20 * USDT),
                trade(3, maker=carol.id, taker=maker_bot.id, value=10 * USDT),
            ]
        )
    job = VolumePoints(db, points, skip={maker_bot.id})
    assert await job.run_once() == 3
    assert len(batches) == 1, "one transaction, one ledger submit"

    checkin = settings.checkin
    first = settings.first_trade
    bob_volume = 50 * settings.volume_taker_per_usdt
    carol_volume = 40 * settings.volume_maker_per_usdt
    assert await points_balance(db, bob.id) == checkin + first + bob_volume
    assert await points_balance(db, carol.id) == first + carol_volume
    assert await points_balance(db, maker_bot.id) == 0
    # Alice's shares: the check-in's (released by Bob's activation), the first trade's and the
    # volume's, all posted.
    level1 = settings.referral_bps[0]
    owed = sum(amount * level1 // 10_000 for amount in (checkin, first, bob_volume))
    dp, dpo, cp, cpo = (await counters(db))[user_account(alice.id, "PTS")]
    assert (cpo - dpo, dp, cp) == (owed, 0, 0)

    # Nothing is paid twice: the trades are marked, and a second run finds none.
    assert await job.run_once() == 0
    async with db.engine.connect() as connection:
        unpaid = await connection.scalar(text("SELECT count(*) FROM trades WHERE NOT points_paid"))
    assert unpaid == 0
    report = await verify(db)
    assert report.ok, report.problems


async def test_a_transaction_that_submits_twice_appends_to_one_chain(db: Database) -> None:
    """A second head taken by the same transaction could wait on a writer waiting for the
    first: every submit of a transaction goes to the chain its first one took."""
    ledger = Ledger()
    users = [await user(db, 7_200_000 + n) for n in range(3)]
    for n in range(12):
        async with unit_of_work(db) as uow:
            for u in users:
                request = TransferRequest(
                    f"twice-{n}-{u.id}", "test", 1, REWARDS_POOL, user_account(u.id, "PTS"), "PTS"
                )
                await ledger.submit(uow, [request])
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id, chain FROM ledger_transfers WHERE id LIKE 'twice-%'")
        )
        chains: dict[str, set[int]] = {}
        for row in rows:
            chains.setdefault(row.id.split("-")[1], set()).add(row.chain)
    assert len(chains) == 12
    assert all(len(used) == 1 for used in chains.values()), chains
