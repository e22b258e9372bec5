"""Writes one batch in the writer's transaction: journal, orders, trades, the ledger's
transfers (one submit), fill notifications and, now and then, a book snapshot."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import insert

from backend.clock import utcnow
from backend.db.engine import insert_for
from backend.db.uow import UnitOfWork
from backend.ledger.service import Ledger
from backend.notify.service import Notice, enqueue_many
from backend.trading.desk import Batch
from backend.trading.engine import Snapshot
from backend.trading.markets import TradingMarket
from backend.trading.models import BookSnapshot, JournalEntry, Order, TradeRecord

_ORDERS = Order.__table__  # type: ignore[attr-defined]
_CHANGING = ("qty", "price", "filled", "cost", "fee", "status", "reserved", "updated_at")


async def persist(
    uow: UnitOfWork,
    ledger: Ledger,
    market: TradingMarket,
    batch: Batch,
    snapshot: Snapshot | None,
    maker_user_ids: Collection[int] = (),
) -> None:
    """``maker_user_ids``: the built-in market maker's users, who get no fill messages."""
    connection = await uow.session.connection()
    symbol = market.symbol
    if batch.journal:
        await connection.execute(
            insert(JournalEntry.__table__),  # type: ignore[attr-defined]
            [{"market": symbol, "seq": seq, "command": c} for seq, c in batch.journal],
        )
    if batch.orders:
        upsert = insert_for(uow.session)(_ORDERS)
        upsert = upsert.on_conflict_do_update(
            index_elements=["id"], set_={name: upsert.excluded[name] for name in _CHANGING}
        )
        await connection.execute(upsert, [order.row() for order in batch.orders.values()])
    if batch.trades:
        await connection.execute(insert(TradeRecord.__table__), batch.trades)  # type: ignore[attr-defined]
    await ledger.submit(uow, batch.transfers)
    if snapshot is not None:
        await connection.execute(
            insert(BookSnapshot.__table__),  # type: ignore[attr-defined]
            [
                {
                    "market": symbol,
                    "seq": snapshot["seq"],
                    "data": dict(snapshot),
                    "version": snapshot["version"],
                    "created_at": utcnow(),
                }
            ],
        )
    notices = [
        fill_notice(market, fill) for fill in batch.fills if fill["user_id"] not in maker_user_ids
    ]
    await enqueue_many(uow, notices)


def fill_notice(market: TradingMarket, fill: dict[str, Any]) -> Notice:
    payload = {
        "market": market.symbol,
        "side": fill["side"],
        "qty": market.qty_str(fill["qty"]),
        "price": market.price_str(fill["price"]),
    }
    key = f"fill:{fill['trade_id']}:{fill['order_id']}"
    return Notice(fill["user_id"], "order_filled", payload, key)
