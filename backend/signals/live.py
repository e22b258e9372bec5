"""The live record: which candles are due a signal, storing signals, and settling each one as
its horizon passes (hit or miss), so the record keeps itself beside the backtest's.

Nothing here commits: the worker's unit of work does, and publishes after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.clock import utcnow
from backend.db.engine import insert_for
from backend.db.uow import UnitOfWork
from backend.signals.candles import FIELDS, Candles
from backend.signals.history import interval_seconds
from backend.signals.metrics import reliability, wilson_interval
from backend.signals.models import CandleSource, SignalCandle, SignalRecord

if TYPE_CHECKING:
    from backend.signals.scorer import Signal

_CANDLES: Table = SignalCandle.__table__  # type: ignore[attr-defined]
_RECORDS: Table = SignalRecord.__table__  # type: ignore[attr-defined]
_KEY = ("market", "interval", "horizon", "time")


@dataclass(frozen=True, slots=True)
class History:
    """A market's last candles, as the scorer reads them, and where they came from."""

    candles: Candles
    source: str
    """``simulator`` when any of them was made up by the backfill, else the last one's."""


@dataclass(frozen=True, slots=True)
class Brief:
    """The direction model's out-of-sample record at a horizon, stored with each signal."""

    hit_rate: float | None
    baseline: str | None
    baseline_hit_rate: float | None


@dataclass(frozen=True, slots=True)
class Bin:
    """One bar of a reliability diagram."""

    predicted: float | None
    observed: float | None
    count: int


@dataclass(frozen=True, slots=True)
class LiveRecord:
    scored: int
    hits: int
    hit_rate: float | None
    hit_rate_ci: tuple[float, float] | None
    brier: float | None
    reliability: tuple[Bin, ...]


async def due(
    session: AsyncSession,
    markets: Sequence[str],
    interval: str,
    horizon: int,
    needed: int,
    now: float,
) -> dict[str, History]:
    """The markets whose newest candle closed within the last interval and has no signal at
    ``horizon`` yet, with their last ``needed`` candles.  A stale candle (the feed was down) is
    not scored: its signal would be about a past that is already known."""
    step = interval_seconds(interval)
    c, r = _CANDLES.c, _RECORDS.c
    connection = await session.connection()
    candle_times = await connection.execute(
        select(c.market, func.max(c.time))
        .where(c.interval == interval, c.market.in_(list(markets)))
        .group_by(c.market)
    )
    newest: dict[str, int] = {market: last for market, last in candle_times}
    signal_times = await connection.execute(
        select(r.market, func.max(r.time))
        .where(r.interval == interval, r.horizon == horizon, r.market.in_(list(markets)))
        .group_by(r.market)
    )
    signalled: dict[str, int] = {market: last for market, last in signal_times}
    found: dict[str, History] = {}
    for market in markets:
        last = newest.get(market)
        if last is None or signalled.get(market, -1) >= last:
            continue
        closed = last + step
        if closed > now or now - closed >= step:
            continue
        newest_first = (
            await connection.execute(
                select(c.time, *(c[name] for name in FIELDS), c.source)
                .where(c.market == market, c.interval == interval)
                .order_by(c.time.desc())
                .limit(needed)
            )
        ).all()
        if len(newest_first) < needed:
            continue
        rows = list(reversed(newest_first))
        columns = list(zip(*rows, strict=True))
        candles = Candles(
            np.array(columns[0], np.int64), *(np.array(col, np.float64) for col in columns[1:6])
        )
        sources = set(columns[6])
        simulated = CandleSource.SIMULATOR.value in sources
        found[market] = History(candles, CandleSource.SIMULATOR.value if simulated else rows[-1][6])
    return found


async def store(
    uow: UnitOfWork,
    signals: Iterable[Signal],
    histories: Mapping[str, History],
    brief: Brief,
) -> list[SignalRecord]:
    """Store each signal unless its candle already has one (the first word stands); returns
    those stored now, the only ones to publish."""
    stored = []
    insert = insert_for(uow.session)
    for signal in signals:
        history = histories[signal.market]
        values = {
            "market": signal.market,
            "interval": signal.interval,
            "horizon": signal.horizon,
            "time": signal.time,
            "close": float(history.candles.close[-1]),
            "probability_up": signal.probability_up,
            "direction": signal.direction,
            "volatility": signal.volatility,
            "var95": signal.var95,
            "patterns": [call._asdict() for call in signal.patterns],
            "model_version": signal.model_version,
            "risk_version": signal.risk_version,
            "published": signal.published,
            "reason": signal.reason,
            "backtest_hit_rate": brief.hit_rate,
            "baseline": brief.baseline,
            "baseline_hit_rate": brief.baseline_hit_rate,
            "source": history.source,
            "created_at": utcnow(),
        }
        statement = (
            insert(_RECORDS)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(*_RECORDS.c)
        )
        connection = await uow.session.connection()
        row = (await connection.execute(statement)).first()
        if row is not None:
            stored.append(SignalRecord(**row._asdict()))
    return stored


async def settle(uow: UnitOfWork, interval: str) -> int:
    """Score every signal whose horizon has passed: ``outcome_up`` from the close ``horizon``
    bars after its candle (a tie is not up, as in the backtest), ``hit`` when the direction
    called it.  A signal whose later candle is missing while newer ones exist (the feed was
    down then) is settled with no outcome, so it neither counts nor waits forever.  Returns
    how many were settled."""
    step = interval_seconds(interval)
    r, c = _RECORDS.c, _CANDLES.c
    later = _CANDLES.alias("later")
    newest = (
        select(c.market, func.max(c.time).label("last"))
        .where(c.interval == interval)
        .group_by(c.market)
        .subquery()
    )
    target = r.time + r.horizon * step
    query = (
        select(r.market, r.horizon, r.time, r.direction, r.close, later.c.close)
        .join(newest, newest.c.market == r.market)
        .outerjoin(
            later,
            and_(
                later.c.market == r.market,
                later.c.interval == r.interval,
                later.c.time == target,
            ),
        )
        .where(r.interval == interval, r.scored_at.is_(None), target <= newest.c.last)
    )
    connection = await uow.session.connection()
    rows = (await connection.execute(query)).all()
    if not rows:
        return 0
    now = utcnow()
    changes: list[dict[str, Any]] = []
    for market, horizon, time, direction, close, after in rows:
        outcome = None if after is None else bool(after > close)
        changes.append(
            {
                "k_market": market,
                "k_horizon": horizon,
                "k_time": time,
                "v_outcome": outcome,
                "v_hit": None if outcome is None else (direction == "up") == outcome,
                "v_scored": now,
            }
        )
    statement = (
        update(_RECORDS)
        .where(
            r.market == bindparam("k_market"),
            r.interval == interval,
            r.horizon == bindparam("k_horizon"),
            r.time == bindparam("k_time"),
            r.scored_at.is_(None),
        )
        .values(
            outcome_up=bindparam("v_outcome"),
            hit=bindparam("v_hit"),
            scored_at=bindparam("v_scored"),
        )
    )
    # Core, not the ORM session: a list of parameters is an executemany there.
    await connection.execute(statement, changes)
    return len(changes)


async def live_record(
    session: AsyncSession, market: str, interval: str, horizon: int
) -> LiveRecord:
    """The settled signals of a market at ``horizon``: hits, hit rate with its 95% Wilson
    interval, Brier score and reliability, computed as the backtest computes them."""
    r = _RECORDS.c
    connection = await session.connection()
    rows = (
        await connection.execute(
            select(r.probability_up, r.outcome_up, r.hit).where(
                r.market == market,
                r.interval == interval,
                r.horizon == horizon,
                r.hit.is_not(None),
            )
        )
    ).all()
    if not rows:
        return LiveRecord(0, 0, None, None, None, ())
    p = np.array([row[0] for row in rows], np.float64)
    y = np.array([1.0 if row[1] else 0.0 for row in rows])
    hits = sum(1 for row in rows if row[2])
    bins = tuple(Bin(b.mean_predicted, b.observed, b.count) for b in reliability(p, y))
    return LiveRecord(
        scored=len(rows),
        hits=hits,
        hit_rate=hits / len(rows),
        hit_rate_ci=wilson_interval(hits, len(rows)),
        brier=float(np.mean((p - y) ** 2)),
        reliability=bins,
    )
