"""The built-in market maker: quotes a ladder on both sides of every market around the feed's
reference price, so the demo always has a book to trade against.

It is an ordinary user of the order books (post-only limit orders through ``Trading.submit``);
its funds are minted from ``sys:faucet``, so it runs only outside production.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import structlog
from sqlmodel import col, select

from backend.clock import utcnow
from backend.db.engine import Database, insert_for
from backend.db.uow import unit_of_work
from backend.ledger.assets import ASSETS
from backend.trading.commands import CancelOrder, PlaceOrder
from backend.trading.engine import OrderType, Side
from backend.trading.markets import TradingMarket
from backend.trading.service import Trading
from backend.trading.writer import Outcome
from backend.users.models import Role, User

log = structlog.get_logger(__name__)

# Not a Telegram id (those are positive): no one can sign in as the market maker.
MAKER_TELEGRAM_ID = -1
# Re-quote every so often, or sooner when the reference moved half a step.
INTERVAL_SECONDS = 2.0
LEVELS = 5
# The innermost quotes sit this far from the reference, and each level one step further out:
# a 0.2% spread and a ladder 0.6% deep, about what a liquid pair shows.
HALF_SPREAD_BPS = 10
STEP_BPS = 12
# Each level offers about this much (USDT): enough for demo orders to fill in one go.
LEVEL_NOTIONAL = Decimal("500")
# The maker's own balances, topped up whenever they fall below half.
FUNDING = {
    "USDT": Decimal("1000000"),
    "TON": Decimal("200000"),
    "ETH": Decimal("300"),
    "BNB": Decimal("1500"),
}


class MarketMaker:
    def __init__(self, db: Database, trading: Trading) -> None:
        self.db = db
        self.trading = trading
        self.user_id = 0
        self._quoted: dict[str, int] = {}
        """The reference price each market was last quoted at."""
        self._orders: dict[str, list[int]] = {}

    async def run(self) -> None:
        self.user_id = await self._user()
        self.trading.add_market_maker(self.user_id)
        while True:
            try:
                await self._fund()
                await asyncio.gather(
                    *(self._quote(market) for market in self.trading.markets.values())
                )
            except Exception:
                log.exception("market_maker_failed")
            await asyncio.sleep(INTERVAL_SECONDS)

    async def _user(self) -> int:
        async with unit_of_work(self.db) as uow:
            insert = insert_for(uow.session)(User).values(
                telegram_id=MAKER_TELEGRAM_ID,
                first_name="Market maker",
                referral_code="marketmaker",
                role=Role.USER.value,
                is_demo=True,
                created_at=utcnow(),
                last_seen_at=utcnow(),
                # It never opened the bot: nothing is ever queued for it.
                bot_blocked_at=utcnow(),
            )
            await uow.session.exec(insert.on_conflict_do_nothing(index_elements=["telegram_id"]))
            found = await uow.session.exec(
                select(User.id).where(col(User.telegram_id) == MAKER_TELEGRAM_ID)
            )
            user_id = found.one()
        assert user_id is not None
        return user_id

    async def _fund(self) -> None:
        low = []
        for code, level in FUNDING.items():
            available = self.trading.available(self.user_id, code)
            if available is None or available < ASSETS[code].to_units(level) // 2:
                low.append(code)
        if low:
            await self.trading.top_up(self.user_id, low, FUNDING)

    async def _quote(self, market: TradingMarket) -> None:
        reference = self.trading.reference_price(market.symbol)
        if reference is None:
            return
        last = self._quoted.get(market.symbol)
        step = max(1, reference * STEP_BPS // 10_000)
        if (
            last is not None
            and abs(reference - last) * 2 < step
            and self._orders.get(market.symbol)
        ):
            return
        cancels = [
            self.trading.submit(market.symbol, CancelOrder(self.user_id, order_id))
            for order_id in self._orders.pop(market.symbol, [])
        ]
        # A quote filled or gone meanwhile answers an error: nothing to do about it.
        await asyncio.gather(*cancels, return_exceptions=True)
        self._quoted[market.symbol] = reference
        spec = market.spec
        requests = []
        for level in range(LEVELS):
            offset = max(1, reference * (HALF_SPREAD_BPS + level * STEP_BPS) // 10_000)
            for side, price in ((Side.BUY, reference - offset), (Side.SELL, reference + offset)):
                if price <= 0:
                    continue
                lots = max(1, int(LEVEL_NOTIONAL * 10**market.quote.scale) // spec.value(price, 1))
                requests.append(
                    PlaceOrder(self.user_id, side, OrderType.LIMIT, price, lots, post_only=True)
                )
        # Refusals (a quote that would cross a user's order, funds short this round) are skipped.
        outcomes = await asyncio.gather(
            *(self.trading.submit(market.symbol, r) for r in requests), return_exceptions=True
        )
        placed = [o.order.id for o in outcomes if isinstance(o, Outcome) and o.order.open]
        self._orders[market.symbol] = placed
