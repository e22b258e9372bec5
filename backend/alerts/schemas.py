"""What the alerts API takes and says: prices as strings with the market's decimals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from backend.alerts.models import Direction, PriceAlert
from backend.market.markets import market_by_symbol


class NewAlert(msgspec.Struct, forbid_unknown_fields=True):
    market: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    price: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    """A decimal string on the market's tick grid, e.g. "6.0000" for TON-USDT."""
    direction: Direction | None = None
    """"above" or "below"; left out, it is the side of the current price the threshold is on."""


class AlertView(msgspec.Struct):
    id: int
    market: str
    direction: str
    price: str
    status: str
    """"active", "fired" or "cancelled"."""
    created_at: datetime
    fired_at: datetime | None
    fired_price: str | None
    """The price that crossed the threshold."""


def alert_view(alert: PriceAlert) -> AlertView:
    assert alert.id is not None
    # Only known markets are ever stored (the service refuses others).
    market = market_by_symbol(alert.market)
    fired = alert.fired_price_ticks
    return AlertView(
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
    return {"type": "alert_fired", **msgspec.to_builtins(alert_view(alert))}
