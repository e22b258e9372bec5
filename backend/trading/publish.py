"""After a batch commits: the book, the trades, the candles and each trader's own orders and
fills go out through the hub, one message per topic per batch (each publish is a round trip to
Redis).  Candles come from trades; a minute without trades follows the reference price, so the
chart stays alive on a quiet market."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from backend.hub.hub import Hub
from backend.hub.protocol import Kind
from backend.market.candles import MINUTE_SECONDS
from backend.trading.desk import Batch, Desk
from backend.trading.engine import Side
from backend.trading.markets import TradingMarket
from backend.trading.orders import view


@dataclass(slots=True)
class LiveCandle:
    open_time: int
    """Epoch seconds at the start of the minute."""
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    """Lots traded."""
    trades: int = 0


def book_topic(symbol: str) -> str:
    return f"book:{symbol}"


def candle_topic(symbol: str) -> str:
    return f"candles:{symbol}:1m"


def depth_view(market: TradingMarket, desk: Desk, depth: int) -> dict[str, Any]:
    bids, asks = desk.book.depth(depth)
    return {
        "market": market.symbol,
        "bids": [[market.price_str(p), market.qty_str(q)] for p, q in bids],
        "asks": [[market.price_str(p), market.qty_str(q)] for p, q in asks],
    }


Message = tuple[Kind, dict[str, Any], dict[str, Any] | None]
Messages = dict[str, list[Message]]
"""Per topic, the messages to publish in order (kind, data, the topic's state after it)."""


class Announcer:
    def __init__(self, hub: Hub, depth: int) -> None:
        self.hub = hub
        self.depth = depth
        self.candles: dict[str, LiveCandle] = {}

    def prepare(self, desk: Desk, batch: Batch) -> Messages:
        """What a committed batch announces, built at once: the book and orders as this batch
        left them, before the next batch changes them."""
        market = desk.market
        symbol = market.symbol
        messages: Messages = defaultdict(list)
        if batch.deltas:
            levels: dict[str, list[list[str]]] = {"bids": [], "asks": []}
            for (side, price), qty in sorted(batch.deltas.items()):
                key = "bids" if side is Side.BUY else "asks"
                levels[key].append([market.price_str(price), market.qty_str(qty)])
            state = depth_view(market, desk, self.depth)
            messages[book_topic(symbol)].append(("delta", levels, state))
        if batch.trades:
            tape = [
                {
                    "id": trade["id"],
                    "price": market.price_str(trade["price"]),
                    "qty": market.qty_str(trade["qty"]),
                    "side": trade["taker_side"],
                    "at": int(trade["at"].timestamp() * 1000),
                }
                for trade in batch.trades
            ]
            messages[f"trades:{symbol}"].append(("event", {"trades": tape}, None))
            for trade in batch.trades:
                at = trade["at"].timestamp()
                self._fold(market, trade["price"], trade["qty"], at, True, messages)
            wire = candle_wire(market, self.candles[symbol])
            messages[candle_topic(symbol)].append(("delta", {"candle": wire}, wire))
        # One message per trader per batch: their changed orders and their fills.
        mine: dict[int, dict[str, Any]] = defaultdict(lambda: {"orders": [], "fills": []})
        for order in batch.orders.values():
            mine[order.user_id]["orders"].append(view(market, order))
        for fill in batch.fills:
            mine[fill["user_id"]]["fills"].append(
                {
                    "trade_id": fill["trade_id"],
                    "order_id": fill["order_id"],
                    "market": symbol,
                    "side": fill["side"],
                    "price": market.price_str(fill["price"]),
                    "qty": market.qty_str(fill["qty"]),
                    "fee": market.quote.format(fill["fee"]),
                    "liquidity": fill["liquidity"],
                    "at": int(fill["at"].timestamp() * 1000),
                }
            )
        for user_id, changes in mine.items():
            messages[f"user:{user_id}"].append(("event", {"type": "trading", **changes}, None))
        return messages

    async def send(self, messages: Messages) -> None:
        """Each topic's messages in order; different topics at once (each publish is a round
        trip to Redis, and a batch touches many users)."""
        await asyncio.gather(*(self._send(topic, queue) for topic, queue in messages.items()))

    async def _send(self, topic: str, queue: list[Message]) -> None:
        for kind, data, state in queue:
            await self.hub.publish(topic, kind, data, state=state)

    async def book(self, desk: Desk) -> None:
        """The whole book, as after a restart: subscribers and the REST book start from it."""
        depth = depth_view(desk.market, desk, self.depth)
        await self.hub.publish(book_topic(desk.market.symbol), "snapshot", depth, state=depth)

    async def reference(self, market: TradingMarket, ticks: int) -> None:
        """The feed's price: it moves the current candle only while the minute has no trade."""
        messages: Messages = defaultdict(list)
        if self._fold(market, ticks, 0, time.time(), False, messages):
            wire = candle_wire(market, self.candles[market.symbol])
            messages[candle_topic(market.symbol)].append(("delta", {"candle": wire}, wire))
        await self.send(messages)

    def _fold(
        self,
        market: TradingMarket,
        ticks: int,
        lots: int,
        at: float,
        traded: bool,
        messages: Messages,
    ) -> bool:
        """Fold a price into the current candle (closing the last one if a minute passed);
        False when a reference price is ignored because trades draw this minute."""
        minute = int(at // MINUTE_SECONDS) * MINUTE_SECONDS
        candle = self.candles.get(market.symbol)
        if candle is None or minute > candle.open_time:
            if candle is not None:
                closed = {"closed": candle_wire(market, candle)}
                messages[candle_topic(market.symbol)].append(("event", closed, None))
            candle = LiveCandle(minute, ticks, ticks, ticks, ticks)
            self.candles[market.symbol] = candle
        elif traded and candle.trades == 0:
            # The minute's first trade: the range so far was the reference price's; trades
            # take over from here (the open stays, so candles still join up).
            candle.high = candle.low = ticks
        elif not traded and candle.trades:
            return False
        candle.high, candle.low = max(candle.high, ticks), min(candle.low, ticks)
        candle.close = ticks
        if traded:
            candle.volume += lots
            candle.trades += 1
        return True


def candle_wire(market: TradingMarket, candle: LiveCandle) -> dict[str, Any]:
    return {
        "market": market.symbol,
        "timeframe": "1m",
        "open_time": candle.open_time,
        "open": market.price_str(candle.open),
        "high": market.price_str(candle.high),
        "low": market.price_str(candle.low),
        "close": market.price_str(candle.close),
        "volume": market.qty_str(candle.volume),
        "trades": candle.trades,
    }
