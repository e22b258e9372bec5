"""Candles in the database: imports (all-or-nothing), the feed's candles, and reading back.

Re-import policy: an import never overwrites.  If any of its (market, interval, time) keys is
already stored, whatever its source, the whole import is refused with ``CandlesExist`` and
nothing is written; a user's file cannot silently replace the feed's own candles or another
import.  ``record_candle`` is the one writer that overwrites (an upsert): the feed may record a
candle again after a restart, and the latest word on its own candle wins.

Nothing here commits: the caller's unit of work does, so an import is one transaction.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.db.engine import insert_for
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest, Conflict
from backend.signals.candles import FIELDS, Candles
from backend.signals.models import CandleSource, SignalCandle

_TABLE: Table = SignalCandle.__table__  # type: ignore[attr-defined]
# Candle lengths the signals work with; a candle's time is a multiple of its length, so the
# same hour never appears under two keys (10:00 and 10:30).
INTERVALS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 4 * 3600,
    "1d": 86400,
}
# BASE-QUOTE in capitals, 16 characters at most (the column's width), like the project's markets.
_MARKET = re.compile(r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$")
_MARKET_WIDTH = 16


class CandlesRefused(BadRequest):
    """Candles that cannot be stored as given: an unknown interval, a malformed market name,
    a time off the interval's grid, a price that contradicts itself."""

    code = "candles_refused"


class CandlesExist(Conflict):
    """An import would overwrite stored candles; nothing of it was written."""

    code = "candles_exist"


def interval_seconds(interval: str) -> int:
    try:
        return INTERVALS[interval]
    except KeyError:
        known = ", ".join(INTERVALS)
        raise CandlesRefused(f"unknown interval {interval!r}; known: {known}") from None


def check_market(market: str) -> str:
    if len(market) > _MARKET_WIDTH or not _MARKET.match(market):
        raise CandlesRefused(f"market {market!r} is not BASE-QUOTE in capitals, e.g. BTC-USD")
    return market


def _session(target: UnitOfWork | AsyncSession) -> AsyncSession:
    return target.session if isinstance(target, UnitOfWork) else target


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def import_candles(
    target: UnitOfWork | AsyncSession,
    market: str,
    interval: str,
    candles: Candles,
    source: CandleSource | str = CandleSource.IMPORT,
) -> int:
    """Store every candle in the caller's transaction and return how many; refuses the whole
    lot (``CandlesRefused``, ``CandlesExist``) before writing anything."""
    session = _session(target)
    check_market(market)
    seconds = interval_seconds(interval)
    source = CandleSource(source).value
    if len(candles) == 0:
        return 0
    off_grid = np.flatnonzero(candles.time % seconds)
    if off_grid.size:
        first = int(candles.time[off_grid[0]])
        raise CandlesRefused(
            f"{off_grid.size} candles are off the {interval} grid, the first at {_iso(first)}"
        )
    broken = np.flatnonzero(~_consistent(candles))
    if broken.size:
        raise CandlesRefused(
            f"{broken.size} candles break low > 0, low <= open, close <= high or volume >= 0,"
            f" the first at {_iso(int(candles.time[broken[0]]))}"
        )
    first, last = int(candles.time[0]), int(candles.time[-1])
    connection = await session.connection()
    stored = await connection.execute(
        select(_TABLE.c.time).where(
            _TABLE.c.market == market,
            _TABLE.c.interval == interval,
            _TABLE.c.time.between(first, last),
        )
    )
    clash = np.intersect1d(candles.time, np.fromiter(stored.scalars(), np.int64))
    if clash.size:
        raise CandlesExist(
            f"{market} {interval}: {clash.size} of these candles are already stored, the first"
            f" at {_iso(int(clash[0]))}; nothing was imported"
        )
    rows = _rows(market, interval, source, candles)
    try:
        # Core, not the ORM session: a list of parameters is an executemany there.
        await connection.execute(insert(_TABLE), rows)
    except IntegrityError as exc:
        # Only a concurrent import of the same times gets here (the checks above ran).
        raise CandlesExist(
            f"{market} {interval}: candles at these times were stored meanwhile;"
            " nothing was imported"
        ) from exc
    return len(rows)


def _consistent(candles: Candles) -> NDArray[np.bool_]:
    """Per candle: the rules the table's check constraint holds (NaN fails every one)."""
    low, high = candles.low, candles.high
    return (
        (low > 0)
        & (high >= low)
        & (candles.open >= low)
        & (candles.open <= high)
        & (candles.close >= low)
        & (candles.close <= high)
        & (candles.volume >= 0)
        & np.isfinite(high)
        & np.isfinite(candles.volume)
    )


def _rows(market: str, interval: str, source: str, candles: Candles) -> list[dict[str, Any]]:
    columns = [candles.time.tolist(), *(getattr(candles, name).tolist() for name in FIELDS)]
    names = ("time", *FIELDS)
    fixed = {"market": market, "interval": interval, "source": source}
    return [fixed | dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


async def record_candle(
    target: UnitOfWork | AsyncSession,
    market: str,
    interval: str,
    time: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
) -> None:
    """Store one closed candle of the project's own feed, replacing the stored one at the
    same time whatever its source (the feed's record of its own market wins)."""
    check_market(market)
    seconds = interval_seconds(interval)
    if time % seconds:
        raise CandlesRefused(f"{_iso(time)} is off the {interval} grid")
    prices = (open_, high, low, close)
    if not all(map(math.isfinite, (*prices, volume))) or min(prices) <= 0 or volume < 0:
        raise CandlesRefused("prices must be positive and the volume not negative")
    if not low <= min(open_, close) <= max(open_, close) <= high:
        raise CandlesRefused("open and close must lie within [low, high]")
    session = _session(target)
    values = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    upsert = insert_for(session)(_TABLE).values(
        market=market, interval=interval, time=time, source=CandleSource.FEED.value, **values
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["market", "interval", "time"],
        set_={"source": CandleSource.FEED.value, **values},
    )
    await session.exec(upsert)


async def load_candles(
    session: UnitOfWork | AsyncSession, market: str, interval: str, since: int | None = None
) -> Candles:
    """The stored candles of ``market`` at ``interval`` in time order, from ``since`` (unix
    seconds, inclusive) if given."""
    statement = (
        select(_TABLE.c.time, *(_TABLE.c[name] for name in FIELDS))
        .where(_TABLE.c.market == market, _TABLE.c.interval == interval)
        .order_by(_TABLE.c.time)
    )
    if since is not None:
        statement = statement.where(_TABLE.c.time >= since)
    connection = await _session(session).connection()
    rows = (await connection.execute(statement)).all()
    if not rows:
        return Candles.empty()
    columns = list(zip(*rows, strict=True))
    return Candles(np.array(columns[0], np.int64), *(np.array(c, np.float64) for c in columns[1:]))
