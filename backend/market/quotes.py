"""The latest prices, as the `prices` topic's kept state: read by the bot and anyone else who
wants a one-off look rather than a subscription."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from backend.hub.backends.base import HubBackend
from backend.market.feed import PRICES_TOPIC


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: str
    change_24h: str
    """Percent with two decimals, e.g. ``-1.25``."""


async def latest_quotes(backend: HubBackend) -> list[Quote]:
    """Every market's last price, by symbol; empty before the feed's first tick."""
    snapshot = await backend.snapshot(PRICES_TOPIC)
    if snapshot is None:
        return []
    markets = msgspec.json.decode(snapshot.data).get("markets", {})
    return [
        Quote(symbol, str(quote["price"]), str(quote["change_24h"]))
        for symbol, quote in sorted(markets.items())
    ]
