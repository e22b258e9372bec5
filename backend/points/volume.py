"""Points from trades: volume points for both sides of every trade, and the first-trade award.

Done after the trade, in transactions of their own, so the order books never wait for the
points rules (referral shares, activations).  A trade is marked ``points_paid`` in the same
transaction as its awards; the awards' ids derive from the trade, so a retry never pays twice.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection

import structlog
from sqlalchemy import update
from sqlmodel import col, select

from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.points.rules import Reason
from backend.points.service import Award, Points
from backend.trading.models import TradeRecord

log = structlog.get_logger(__name__)

# Trades paid per transaction: large enough that most traders appear a few times in one
# (their awards are summed), small enough that a rollback redoes little.
CHUNK = 500
# An idle job looks for new trades this often.
POLL_SECONDS = 1.0


class VolumePoints:
    def __init__(self, db: Database, points: Points, skip: Collection[int] = ()) -> None:
        self.db = db
        self.points = points
        self.skip = skip
        """Users who earn no points (the built-in market maker)."""
        self._traded: set[int] = set()
        """Users whose first trade is already recorded (spares a profile lock per chunk)."""

    async def run(self) -> None:
        while True:
            try:
                paid = await self.run_once()
            except Exception:
                log.exception("volume_points_failed")
                paid = 0
            if paid < CHUNK:
                await asyncio.sleep(POLL_SECONDS)

    async def run_once(self) -> int:
        """Pay one chunk of unpaid trades; returns how many.

        Each user gets one award per side for the whole chunk (its notional summed), and all
        of them, with the awards for users' first trades, go in one ledger submit: the job
        takes the ledger's locks once, at the end of its transaction, and the order books'
        batches do not queue behind it.  An award's cause names the chunk's first and last
        trade; a chunk whose transaction rolled back paid nothing, and is formed again from
        unpaid trades.
        """
        async with unit_of_work(self.db) as uow:
            query = (
                select(TradeRecord)
                .where(col(TradeRecord.points_paid).is_(False))
                .order_by(col(TradeRecord.id))
                .limit(CHUNK)
                .with_for_update(skip_locked=True)
            )
            trades = (await uow.session.exec(query)).all()
            if not trades:
                return 0
            notional: dict[tuple[int, bool], int] = defaultdict(int)
            first_trade: dict[int, TradeRecord] = {}
            for trade in trades:
                for user_id, maker in ((trade.maker_user_id, True), (trade.taker_user_id, False)):
                    if user_id in self.skip:
                        continue
                    notional[(user_id, maker)] += trade.value
                    first_trade.setdefault(user_id, trade)
            firsts = {
                user_id: f"{trade.market}:{trade.id}"
                for user_id, trade in first_trade.items()
                if user_id not in self._traded
            }
            span = f"{trades[0].id}-{trades[-1].id}"
            awards = [
                Award(
                    user_id,
                    self.points.rules.volume(value, maker=maker),
                    Reason.VOLUME,
                    f"{user_id}:{span}:{'maker' if maker else 'taker'}",
                    {"trades": span},
                )
                for (user_id, maker), value in sorted(notional.items())
            ]
            await self.points.pay_trades(uow, firsts, awards)
            await uow.session.exec(
                update(TradeRecord)
                .where(col(TradeRecord.id).in_([trade.id for trade in trades]))
                .values(points_paid=True)
            )
        self._traded.update(first_trade)
        return len(trades)
