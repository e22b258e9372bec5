"""HTTP: markets and their data (public), the user's orders and trades, demo funds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.auth.sessions import PUBLIC, SignedIn, signed_in_id
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest, Forbidden
from backend.hub.hub import Hub
from backend.inputs import INT64_MAX, Id64
from backend.ledger.assets import ASSETS
from backend.openapi import errors
from backend.trading import queries
from backend.trading.commands import AmendOrder, CancelOrder, OrderClosed, OrderNotFound, PlaceOrder
from backend.trading.engine import OrderType, SelfTrade, Side, TimeInForce
from backend.trading.markets import InvalidAmount, TradingMarket
from backend.trading.models import Order, OrderStatus, TradeRecord
from backend.trading.orders import OrderState, view
from backend.trading.router import TradingRouter
from backend.trading.schemas import (
    AmendOrderBody,
    BookView,
    CandleView,
    FaucetView,
    MarketTrade,
    MarketView,
    MyTrade,
    MyTradesPage,
    NewOrder,
    OrderView,
)
from backend.trading.service import UnknownMarket

OrderId = Id64


def _order_view(market: TradingMarket, order: OrderState) -> OrderView:
    return OrderView(**view(market, order))


def _amount(parse: Any, text: str) -> int:
    try:
        return int(parse(text))
    except InvalidAmount as exc:
        raise BadRequest(str(exc), code=exc.code) from None


class MarketsController(Controller):
    path = "/api/markets"
    tags = ["markets"]
    opt = PUBLIC

    @get()
    async def markets(
        self,
        trading: NamedDependency[TradingRouter],
        hub: NamedDependency[Hub],
        uow: NamedDependency[UnitOfWork],
    ) -> list[MarketView]:
        """Every market: its grid, minimum, fees, last trade and best prices."""
        result = []
        async with uow.read() as session:
            for market in trading.markets.values():
                last = await queries.last_price(session, market.symbol)
                top = await queries.book(hub.backend, market, 1)
                result.append(
                    MarketView(
                        symbol=market.symbol,
                        base=market.base.code,
                        quote=market.quote.code,
                        tick_size=f"{market.market.tick_size:f}",
                        lot_size=f"{market.lot_size:f}",
                        min_notional=market.quote.format(market.spec.min_notional),
                        maker_fee_bps=market.spec.maker_fee_bps,
                        taker_fee_bps=market.spec.taker_fee_bps,
                        price_decimals=market.market.decimals,
                        qty_decimals=market.qty_decimals,
                        last_price=market.price_str(last) if last is not None else None,
                        best_bid=top["bids"][0][0] if top["bids"] else None,  # type: ignore[index]
                        best_ask=top["asks"][0][0] if top["asks"] else None,  # type: ignore[index]
                    )
                )
        return result

    @get("/{symbol:str}/book")
    async def book(
        self,
        symbol: FromPath[str],
        trading: NamedDependency[TradingRouter],
        hub: NamedDependency[Hub],
        depth: Annotated[int, QueryParameter(ge=1, le=200)] = 20,
    ) -> BookView:
        """The order book, aggregated by price (L2): `[price, quantity]` per level."""
        market = trading.market(symbol)
        return BookView(**await queries.book(hub.backend, market, depth))  # type: ignore[arg-type]

    @get("/{symbol:str}/trades")
    async def trades(
        self,
        symbol: FromPath[str],
        trading: NamedDependency[TradingRouter],
        uow: NamedDependency[UnitOfWork],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[MarketTrade]:
        """The market's latest trades, newest first; `side` is the taker's."""
        market = trading.market(symbol)
        async with uow.read() as session:
            rows = await queries.market_trades(session, market.symbol, limit)
        return [_market_trade(market, row) for row in rows]

    @get("/{symbol:str}/candles")
    async def candles(
        self,
        symbol: FromPath[str],
        trading: NamedDependency[TradingRouter],
        uow: NamedDependency[UnitOfWork],
        tf: FromQuery[Literal["1m"]] = "1m",
        limit: Annotated[int, QueryParameter(ge=1, le=1440)] = 300,
    ) -> list[CandleView]:
        """One-minute candles built from trades, oldest first."""
        market = trading.market(symbol)
        async with uow.read() as session:
            bars = await queries.candles(session, market, limit)
        return [CandleView(**bar) for bar in bars[-limit:]]  # type: ignore[arg-type]


def _market_trade(market: TradingMarket, row: TradeRecord) -> MarketTrade:
    return MarketTrade(
        id=row.id,
        price=market.price_str(row.price),
        qty=market.qty_str(row.qty),
        side=row.taker_side,
        at=int(row.at.timestamp() * 1000),
    )


class OrdersController(Controller):
    path = "/api/orders"
    tags = ["orders"]

    @post(
        responses={
            200: ResponseSpec(OrderView, description="The earlier order with this client_order_id"),
            **errors(409),
        }
    )
    async def place(
        self,
        request: SignedIn,
        data: JSONBody[NewOrder],
        trading: NamedDependency[TradingRouter],
    ) -> Response[OrderView]:
        """Place an order.  201 when placed; 200 with the earlier order when its
        `client_order_id` was used before in this market."""
        try:
            market = trading.market(data.market)
        except UnknownMarket as exc:
            raise BadRequest(exc.message, code="unknown_market") from None
        order_type = OrderType(data.type)
        if order_type is OrderType.LIMIT and data.price is None:
            raise BadRequest("a limit order needs a price", code="invalid_price")
        if order_type is OrderType.MARKET and data.price is not None:
            raise BadRequest("a market order takes no price", code="invalid_price")
        price = _amount(market.ticks, data.price) if data.price is not None else 0
        placed = await trading.submit(
            market.symbol,
            PlaceOrder(
                user_id=signed_in_id(request),
                side=Side(data.side),
                type=order_type,
                price=price,
                qty=_amount(market.lots, data.qty),
                tif=TimeInForce(data.tif),
                post_only=data.post_only,
                client_order_id=data.client_order_id,
                stp=SelfTrade(data.stp),
            ),
        )
        return Response(
            _order_view(market, placed.order), status_code=201 if placed.created else 200
        )

    @get(responses=errors(404))
    async def list_orders(
        self,
        request: SignedIn,
        trading: NamedDependency[TradingRouter],
        uow: NamedDependency[UnitOfWork],
        status: FromQuery[Literal["open", "closed", "all"]] = "open",
        market: Annotated[str | None, QueryParameter(max_length=16)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[OrderView]:
        """Your orders, newest first."""
        if market is not None:
            trading.market(market)
        async with uow.read() as session:
            rows = await queries.orders(session, signed_in_id(request), status, market, limit)
        return [_order_view(trading.market(row.market), OrderState.from_row(row)) for row in rows]

    @delete("/{order_id:int}", status_code=200, responses=errors(409))
    async def cancel(
        self,
        request: SignedIn,
        order_id: OrderId,
        trading: NamedDependency[TradingRouter],
        uow: NamedDependency[UnitOfWork],
    ) -> OrderView:
        """Cancel an open order; what it held comes back."""
        row = await self._own(request, order_id, uow)
        done = await trading.submit(row.market, CancelOrder(signed_in_id(request), order_id))
        return _order_view(trading.market(row.market), done.order)

    @patch("/{order_id:int}", responses=errors(409))
    async def amend(
        self,
        request: SignedIn,
        order_id: OrderId,
        data: JSONBody[AmendOrderBody],
        trading: NamedDependency[TradingRouter],
        uow: NamedDependency[UnitOfWork],
    ) -> OrderView:
        """Change an open limit order's price or total quantity (cancel-replace).  It keeps its
        place in the queue only when the quantity shrinks at the same price."""
        row = await self._own(request, order_id, uow)
        market = trading.market(row.market)
        price = _amount(market.ticks, data.price) if data.price is not None else None
        qty = _amount(market.lots, data.qty) if data.qty is not None else None
        done = await trading.submit(
            row.market, AmendOrder(signed_in_id(request), order_id, price, qty)
        )
        return _order_view(market, done.order)

    async def _own(self, request: SignedIn, order_id: int, uow: UnitOfWork) -> Order:
        async with uow.read() as session:
            row = await queries.order(session, order_id)
        if row is None or row.user_id != signed_in_id(request):
            raise OrderNotFound("no such order")
        if row.status != OrderStatus.OPEN.value:
            raise OrderClosed(f"the order is {row.status}")
        return row


class MyTradesController(Controller):
    path = "/api/trades"
    tags = ["orders"]

    @get(responses=errors(404))
    async def my_trades(
        self,
        request: SignedIn,
        trading: NamedDependency[TradingRouter],
        uow: NamedDependency[UnitOfWork],
        market: Annotated[str | None, QueryParameter(max_length=16)] = None,
        before: Annotated[int | None, QueryParameter(ge=1, le=INT64_MAX)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> MyTradesPage:
        """Your fills, newest first, a page at a time."""
        if market is not None:
            trading.market(market)
        user_id = signed_in_id(request)
        async with uow.read() as session:
            rows = await queries.my_trades(session, user_id, market, before, limit)
        trades = []
        for row in rows:
            symbol = trading.market(row.market)
            maker = row.maker_user_id == user_id
            taker_buys = row.taker_side == Side.BUY.value
            trades.append(
                MyTrade(
                    trade_id=row.id,
                    order_id=row.maker_order_id if maker else row.taker_order_id,
                    market=row.market,
                    side="sell" if maker == taker_buys else "buy",
                    price=symbol.price_str(row.price),
                    qty=symbol.qty_str(row.qty),
                    fee=symbol.quote.format(row.maker_fee if maker else row.taker_fee),
                    liquidity="maker" if maker else "taker",
                    at=int(row.at.timestamp() * 1000),
                )
            )
        return MyTradesPage(trades, trades[-1].trade_id if len(trades) == limit else None)


class FaucetController(Controller):
    path = "/api/faucet"
    tags = ["orders"]

    @post(status_code=200)
    async def top_up(
        self,
        request: SignedIn,
        trading: NamedDependency[TradingRouter],
        settings: NamedDependency[Settings],
    ) -> list[FaucetView]:
        """Demo funds: tops each asset up to a fixed level.  Never in production."""
        if not settings.trading.faucet or not trading.demo:
            raise Forbidden("the faucet is for the demo only", code="faucet_off")
        topped = await trading.top_up(signed_in_id(request))
        return [FaucetView(t.asset, ASSETS[t.asset].format(t.amount)) for t in topped]
