"""What the alerts API takes and says: prices as strings with the market's decimals."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import msgspec

from backend.alerts.models import Direction, PriceAlert
from backend.alerts.service import summary


class NewAlert(msgspec.Struct, forbid_unknown_fields=True):
    market: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    price: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    """A plain positive decimal on the market's tick grid, e.g. "6.0000" for TON-USDT
    (``invalid_price`` otherwise, as for an order's price)."""
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
    return AlertView(**asdict(summary(alert)))
