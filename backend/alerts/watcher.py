"""Fires price alerts as the market feed ticks: each exactly once, through the outbox.

The feed ticks twice a second; asking the database every tick whether any alert was crossed
would be a query per tick for nothing almost every time. The watcher keeps, per market, the
nearest thresholds on each side (the lowest "above", the highest "below") and touches the
database only when a price reaches one of them, or to refresh that cache.

Firing is one conditional UPDATE (``WHERE status = 'active'``) in the same transaction as the
outbox rows: two watchers racing (two leaders for a moment, say) fire an alert once, and a
cancel racing the watcher leaves the alert either cancelled or fired, never both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import and_, func, or_, update
from sqlmodel import col, select

from backend.alerts.models import AlertStatus, Direction, PriceAlert
from backend.alerts.service import alert_event, summary
from backend.clock import utcnow
from backend.db.engine import Database
from backend.db.uow import AfterCommit, UnitOfWork, unit_of_work
from backend.market.feed import Publisher
from backend.notify.service import enqueue

log = structlog.get_logger(__name__)

# How stale the cached thresholds may get: a new alert is watched within this time. Short
# enough that nobody notices, long enough that the refresh is 1 query per 4 ticks at most.
REFRESH_SECONDS = 2.0


@dataclass(slots=True)
class Bounds:
    """The thresholds nearest to the price on one market; None: no active alert that side."""

    lowest_above: int | None = None
    highest_below: int | None = None

    def crossed(self, price: int) -> bool:
        return (self.lowest_above is not None and price >= self.lowest_above) or (
            self.highest_below is not None and price <= self.highest_below
        )


class AlertWatcher:
    """A price listener for the market feed (``MarketFeed(listeners=[watcher.on_prices])``)."""

    def __init__(
        self,
        db: Database,
        hub: Publisher,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.hub = hub
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.bounds: dict[str, Bounds] = {}
        self._loaded_at: float | None = None

    async def on_prices(self, prices: Mapping[str, int]) -> None:
        """Fire whatever this tick's prices crossed."""
        now = self.clock()
        if self._loaded_at is None or now - self._loaded_at >= self.refresh_seconds:
            # Marked first: while the database is down, the old bounds serve and the refresh
            # is retried once an interval, not on every tick.
            self._loaded_at = now
            await self.refresh()
        crossed = {
            market: price
            for market, price in prices.items()
            if (bounds := self.bounds.get(market)) is not None and bounds.crossed(price)
        }
        if not crossed:
            return
        fired = await self.fire(crossed)
        if fired:
            log.info("price_alerts_fired", alerts=[alert.id for alert in fired])
        # What fired is gone from the next bounds; an alert another watcher fired, too.
        await self.refresh()

    async def refresh(self) -> None:
        """Reload the nearest thresholds of every market from the active alerts."""
        query = (
            select(
                col(PriceAlert.market),
                col(PriceAlert.direction),
                func.min(col(PriceAlert.price_ticks)),
                func.max(col(PriceAlert.price_ticks)),
            )
            .where(col(PriceAlert.status) == AlertStatus.ACTIVE)
            .group_by(col(PriceAlert.market), col(PriceAlert.direction))
        )
        async with self.db.reads() as session:
            rows = (await session.exec(query)).all()
        bounds: dict[str, Bounds] = {}
        for market, direction, lowest, highest in rows:
            entry = bounds.setdefault(market, Bounds())
            if direction == Direction.ABOVE:
                entry.lowest_above = lowest
            else:
                entry.highest_below = highest
        self.bounds = bounds
        self._loaded_at = self.clock()

    async def fire(self, prices: Mapping[str, int]) -> list[PriceAlert]:
        """Fire every active alert these prices crossed, in one transaction; returns them."""
        fired: list[PriceAlert] = []
        async with unit_of_work(self.db) as uow:
            for market, price in sorted(prices.items()):
                fired += await _fire_market(uow, market, price)
            for alert in fired:
                assert alert.id is not None
                await enqueue(
                    uow, alert.user_id, "price_alert", _payload(alert), f"price_alert:{alert.id}"
                )
            if fired:
                uow.after_commit(self._publisher(fired))
        return fired

    def _publisher(self, fired: Sequence[PriceAlert]) -> AfterCommit:
        async def publish() -> None:
            for alert in fired:
                await self.hub.publish(f"user:{alert.user_id}", "event", alert_event(alert))

        return publish


async def _fire_market(uow: UnitOfWork, market: str, price: int) -> list[PriceAlert]:
    crossed = or_(
        and_(col(PriceAlert.direction) == Direction.ABOVE, col(PriceAlert.price_ticks) <= price),
        and_(col(PriceAlert.direction) == Direction.BELOW, col(PriceAlert.price_ticks) >= price),
    )
    statement = (
        update(PriceAlert)
        .where(
            col(PriceAlert.market) == market,
            col(PriceAlert.status) == AlertStatus.ACTIVE,
            crossed,
        )
        .values(status=AlertStatus.FIRED.value, fired_at=utcnow(), fired_price_ticks=price)
        .returning(PriceAlert)
        .execution_options(synchronize_session=False)
    )
    result = await uow.session.exec(statement)
    return sorted(result.scalars().all(), key=lambda alert: alert.id or 0)


def _payload(alert: PriceAlert) -> dict[str, str]:
    """What ``notify.messages`` renders for kind ``price_alert``."""
    fired = summary(alert)
    assert fired.fired_price is not None
    return {
        "market": fired.market,
        "direction": fired.direction,
        "price": fired.price,
        "fired_price": fired.fired_price,
    }
