"""Setting, listing and cancelling a user's price alerts; firing lives in ``watcher.py``.

Thresholds are parsed as orders' prices are (``backend/market/grid.py``): a known market, a
positive plain decimal on its tick grid, refused as ``invalid_price`` otherwise.  Without a
direction, the side of the current price the threshold lies on gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec
from sqlalchemy import func, update
from sqlmodel import col, select

from backend.alerts.models import AlertStatus, Direction, PriceAlert
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest, Conflict, NotFound
from backend.hub.backends.base import HubBackend
from backend.market.feed import PRICES_TOPIC
from backend.market.markets import Market, market_by_symbol
from backend.users.models import User

# A handful per market on each side is what a person watches; more is a bot, and every active
# alert costs the watcher a row to scan when the price crosses.
MAX_ACTIVE_ALERTS = 20
# The largest threshold: ticks are stored as BIGINT, and this stays far below its 2**63 limit
# so no arithmetic near it can overflow.  An alert may watch past what an order may trade at.
MAX_PRICE_TICKS = 2**62 - 1

StatusFilter = Literal["active", "fired", "cancelled", "all"]


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """An alert as the API and the hub show it: prices as strings with the market's decimals."""

    id: int
    market: str
    direction: str
    price: str
    status: str
    created_at: datetime
    fired_at: datetime | None
    fired_price: str | None


def summary(alert: PriceAlert) -> AlertSummary:
    assert alert.id is not None
    # Only known markets are ever stored (create_alert refuses others).
    market = market_by_symbol(alert.market)
    fired = alert.fired_price_ticks
    return AlertSummary(
        id=alert.id,
        market=alert.market,
        direction=alert.direction,
        price=market.price_str(alert.price_ticks),
        status=alert.status,
        created_at=alert.created_at,
        fired_at=alert.fired_at,
        fired_price=market.price_str(fired) if fired is not None else None,
    )


def alert_event(alert: PriceAlert) -> dict[str, Any]:
    """The ``alert_fired`` event on the owner's ``user:<id>`` topic."""
    return {"type": "alert_fired", **msgspec.to_builtins(summary(alert))}


async def latest_ticks(quotes: HubBackend, market: Market) -> int | None:
    """The market's last published price in ticks (the `prices` topic's kept state)."""
    snapshot = await quotes.snapshot(PRICES_TOPIC)
    if snapshot is None:
        return None
    quote = msgspec.json.decode(snapshot.data).get("markets", {}).get(market.symbol)
    if not isinstance(quote, dict) or "price" not in quote:
        return None
    try:
        return market.to_ticks(Decimal(str(quote["price"])))
    except (ValueError, ArithmeticError):
        return None


def known_market(symbol: str) -> Market:
    try:
        return market_by_symbol(symbol)
    except KeyError as exc:
        raise BadRequest(str(exc.args[0]), code="unknown_market") from None


async def create_alert(
    uow: UnitOfWork,
    quotes: HubBackend,
    user_id: int,
    symbol: str,
    price: str,
    direction: Direction | None = None,
) -> PriceAlert:
    """Set an alert; at most MAX_ACTIVE_ALERTS active per user, even under concurrent requests."""
    market = known_market(symbol)
    ticks = market.parse_price(price, MAX_PRICE_TICKS)
    if direction is None:
        direction = await _direction_from_price(quotes, market, ticks)
    session = uow.session
    # Serializes one user's creates on PostgreSQL, so two requests cannot both see 19 alerts.
    # SQLite ignores FOR UPDATE but has one writer: the INSERT below takes the write lock
    # before the count, which therefore sees every committed alert.
    await session.exec(select(col(User.id)).where(col(User.id) == user_id).with_for_update())
    alert = PriceAlert(
        user_id=user_id, market=market.symbol, direction=direction.value, price_ticks=ticks
    )
    session.add(alert)
    await session.flush()
    active = (
        await session.exec(
            select(func.count())
            .select_from(PriceAlert)
            .where(col(PriceAlert.user_id) == user_id, col(PriceAlert.status) == AlertStatus.ACTIVE)
        )
    ).one()
    if active > MAX_ACTIVE_ALERTS:
        raise Conflict(
            f"at most {MAX_ACTIVE_ALERTS} active alerts: cancel one first", code="too_many_alerts"
        )
    return alert


async def _direction_from_price(quotes: HubBackend, market: Market, ticks: int) -> Direction:
    current = await latest_ticks(quotes, market)
    if current is None:
        raise Conflict(
            f"no price for {market.symbol} yet: say whether to watch above or below",
            code="no_price",
        )
    if ticks == current:
        raise Conflict(
            f"{market.symbol} is at {market.price_str(ticks)} now: pick another price",
            code="price_is_current",
        )
    return Direction.ABOVE if ticks > current else Direction.BELOW


async def list_alerts(
    uow: UnitOfWork, user_id: int, status: StatusFilter = "active", limit: int = 50
) -> Sequence[PriceAlert]:
    """The user's alerts, newest first."""
    query = select(PriceAlert).where(col(PriceAlert.user_id) == user_id)
    if status != "all":
        query = query.where(col(PriceAlert.status) == status)
    query = query.order_by(col(PriceAlert.id).desc()).limit(limit)
    async with uow.read() as session:
        return (await session.exec(query)).all()


async def cancel_alert(uow: UnitOfWork, user_id: int, alert_id: int) -> None:
    """Cancel one of the user's active alerts; cancelling it again is a no-op.

    The status check in the UPDATE settles a race with the watcher: fired or cancelled, not both.
    Someone else's alert is as unknown as one that never existed.
    """
    session = uow.session
    cancelled = await session.exec(
        update(PriceAlert)
        .where(
            col(PriceAlert.id) == alert_id,
            col(PriceAlert.user_id) == user_id,
            col(PriceAlert.status) == AlertStatus.ACTIVE,
        )
        .values(status=AlertStatus.CANCELLED.value)
        .returning(col(PriceAlert.id))
    )
    if cancelled.first() is not None:
        return
    status = (
        await session.exec(
            select(col(PriceAlert.status)).where(
                col(PriceAlert.id) == alert_id, col(PriceAlert.user_id) == user_id
            )
        )
    ).first()
    if status is None:
        raise NotFound(f"no alert {alert_id}", code="alert_not_found")
    if status == AlertStatus.FIRED:
        raise Conflict(f"alert {alert_id} has already fired", code="alert_fired")
