"""Reads for the trading API: any process can answer them from the database and the hub."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.hub.backends.base import HubBackend
from backend.market.candles import MINUTE_SECONDS
from backend.trading.markets import TradingMarket
from backend.trading.models import Order, OrderStatus, TradeRecord
from backend.trading.publish import book_topic

# Candles are drawn from this many of a market's newest trades at most: a day of a busy demo.
CANDLE_TRADES = 50_000


async def orders(
    session: AsyncSession, user_id: int, status: str, market: str | None, limit: int
) -> Sequence[Order]:
    query = select(Order).where(col(Order.user_id) == user_id)
    if status == "open":
        query = query.where(col(Order.status) == OrderStatus.OPEN.value)
    elif status == "closed":
        query = query.where(col(Order.status) != OrderStatus.OPEN.value)
    if market is not None:
        query = query.where(col(Order.market) == market)
    return (await session.exec(query.order_by(col(Order.id).desc()).limit(limit))).all()


async def order(session: AsyncSession, order_id: int) -> Order | None:
    return await session.get(Order, order_id)


async def my_trades(
    session: AsyncSession, user_id: int, market: str | None, before: int | None, limit: int
) -> Sequence[TradeRecord]:
    query = select(TradeRecord).where(
        or_(col(TradeRecord.maker_user_id) == user_id, col(TradeRecord.taker_user_id) == user_id)
    )
    if market is not None:
        query = query.where(col(TradeRecord.market) == market)
    if before is not None:
        query = query.where(col(TradeRecord.id) < before)
    return (await session.exec(query.order_by(col(TradeRecord.id).desc()).limit(limit))).all()


async def market_trades(session: AsyncSession, market: str, limit: int) -> Sequence[TradeRecord]:
    query = (
        select(TradeRecord)
        .where(col(TradeRecord.market) == market)
        .order_by(col(TradeRecord.id).desc())
        .limit(limit)
    )
    return (await session.exec(query)).all()


async def last_price(session: AsyncSession, market: str) -> int | None:
    trades = await market_trades(session, market, 1)
    return trades[0].price if trades else None


async def held(session: AsyncSession, user_id: int) -> dict[str, int]:
    """What the user's open orders hold in escrow, per asset (shown as locked)."""
    query = (
        select(col(Order.reserve_asset), func.sum(Order.reserved))
        .where(col(Order.user_id) == user_id, col(Order.status) == OrderStatus.OPEN.value)
        .group_by(col(Order.reserve_asset))
    )
    return {asset: int(total or 0) for asset, total in (await session.exec(query)).all()}


async def book(backend: HubBackend, market: TradingMarket, depth: int) -> dict[str, object]:
    """The book as last published (``book:<MARKET>``'s state), cut to ``depth`` levels."""
    snapshot = await backend.snapshot(book_topic(market.symbol))
    if snapshot is None:
        return {"market": market.symbol, "bids": [], "asks": []}
    data = msgspec.json.decode(snapshot.data)
    return {"market": market.symbol, "bids": data["bids"][:depth], "asks": data["asks"][:depth]}


async def candles(
    session: AsyncSession, market: TradingMarket, minutes: int
) -> list[dict[str, object]]:
    """One-minute candles from the market's trades, oldest first; a minute without trades
    repeats the last close (so the chart has no holes)."""
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    query = (
        select(col(TradeRecord.at), col(TradeRecord.price), col(TradeRecord.qty))
        .where(col(TradeRecord.market) == market.symbol, col(TradeRecord.at) >= since)
        .order_by(col(TradeRecord.id))
        .limit(CANDLE_TRADES)
    )
    built: dict[int, list[int]] = {}
    for at, price, qty in (await session.exec(query)).all():
        minute = int(at.timestamp()) // MINUTE_SECONDS * MINUTE_SECONDS
        bar = built.get(minute)
        if bar is None:
            built[minute] = [price, price, price, price, qty, 1]
        else:
            bar[1], bar[2], bar[3] = max(bar[1], price), min(bar[2], price), price
            bar[4] += qty
            bar[5] += 1
    result: list[dict[str, object]] = []
    previous: list[int] | None = None
    for minute in range(min(built, default=0), max(built, default=-1) + 1, MINUTE_SECONDS):
        bar = built.get(minute)
        if bar is None and previous is not None:
            close = previous[3]
            bar = [close, close, close, close, 0, 0]
        if bar is None:
            continue
        previous = bar
        result.append(
            {
                "open_time": minute,
                "open": market.price_str(bar[0]),
                "high": market.price_str(bar[1]),
                "low": market.price_str(bar[2]),
                "close": market.price_str(bar[3]),
                "volume": market.qty_str(bar[4]),
                "trades": bar[5],
            }
        )
    return result
