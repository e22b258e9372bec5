"""One market's book with its risk check and settlement: synchronous, no I/O.

A request is checked against the funds mirror, applied to the book, and its events turned into
ledger transfers, order and trade rows, and messages, all gathered in a ``Batch`` that the
writer stores in one transaction.  Funds move through escrow:

* an accepted order moves what it may spend from the user to ``sys:escrow`` (its hold);
* a trade pays the seller's base to the buyer and the buyer's quote to the seller, both out of
  escrow, and the fees (quote) to ``sys:fees``;
* a closed order (filled, cancelled, expired) gets back what its hold did not spend.

So escrow always holds exactly the open orders' holds (``reserved``), which the tests check
against the ledger.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from backend.clock import utcnow
from backend.ledger.assets import ASSETS
from backend.ledger.domain import TransferRequest, system_account, user_account
from backend.trading.commands import (
    AmendOrder,
    CancelOrder,
    Deposit,
    InsufficientFunds,
    OrderClosed,
    OrderNotFound,
    PlaceOrder,
    Request,
    Withdraw,
    encode,
    rejection,
)
from backend.trading.engine import (
    Accepted,
    Amend,
    Amended,
    Book,
    BookDelta,
    Cancel,
    Cancelled,
    Command,
    Event,
    Expired,
    OrderType,
    Place,
    Rejected,
    RejectReason,
    Side,
    Trade,
)
from backend.trading.funds import Funds, Pair
from backend.trading.markets import TradingMarket
from backend.trading.models import OrderStatus
from backend.trading.orders import OrderState, budget_for, limit_hold

ESCROW = "escrow"
FEES = "fees"


@dataclass(slots=True)
class Batch:
    """What one group commit writes and, once committed, announces."""

    journal: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    transfers: list[TransferRequest] = field(default_factory=list)
    orders: dict[int, OrderState] = field(default_factory=dict)
    """Every order this batch created or changed, in its latest state."""
    trades: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    deltas: dict[tuple[Side, int], int] = field(default_factory=dict)
    pairs: set[Pair] = field(default_factory=set)
    """Balances this batch moves: held in the mirror until it commits."""
    credits: Counter[Pair] = field(default_factory=Counter)
    """Added to the mirror once the batch has committed."""


class Desk:
    def __init__(
        self, market: TradingMarket, book: Book, funds: Funds, next_trade_id: Callable[[], int]
    ) -> None:
        self.market = market
        self.next_trade_id = next_trade_id
        self.book = book
        self.funds = funds
        self.orders: dict[int, OrderState] = {}
        """Open orders, by id: exactly the orders resting on the book."""
        self.held: Counter[Pair] = Counter()
        """What the open orders hold in escrow, per (user, asset)."""
        self._transfer_ids: Iterator[str] = iter(())

    # Requests ---------------------------------------------------------------------------------

    def apply(self, request: Request, order_id: int, batch: Batch) -> OrderState | None:
        """Run one request; the order as it stands after it (None for a deposit), or a
        DomainError raised."""
        if isinstance(request, PlaceOrder):
            return self._place(request, order_id, batch)
        if isinstance(request, Deposit):
            self._deposit(request, batch)
            return None
        if isinstance(request, Withdraw):
            self._withdraw(request, batch)
            return None
        order = self.orders.get(request.order_id)
        if order is None:
            # Callers check that the order exists and is the user's before sending (a
            # cancel or amend names an order it has seen); gone from the book by now, it
            # was filled or cancelled in between: the documented 409, not a 404.
            raise OrderClosed("the order is no longer open")
        if order.user_id != request.user_id:
            raise OrderNotFound("no such order")
        if isinstance(request, CancelOrder):
            self._run(Cancel(order.id, order.user_id), batch)
            return order
        return self._amend(request, order, batch)

    def _deposit(self, request: Deposit, batch: Batch) -> None:
        pair = (request.user_id, request.asset)
        batch.credits[pair] += request.amount
        batch.pairs.add(pair)
        batch.transfers.append(
            TransferRequest(
                request.transfer_id,
                "deposit",
                request.amount,
                system_account(request.source, request.asset),
                user_account(*pair),
                request.asset,
            )
        )

    def _withdraw(self, request: Withdraw, batch: Batch) -> None:
        pair = (request.user_id, request.asset)
        if request.amount <= 0:
            raise InsufficientFunds("nothing to withdraw")
        if request.amount > self.funds.available(pair):
            raise InsufficientFunds(
                f"only {self._amount(request.asset, self.funds.available(pair))} is available"
            )
        self.funds.debit(pair, request.amount)
        batch.pairs.add(pair)
        batch.transfers.append(
            TransferRequest(
                request.transfer_id,
                "withdrawal",
                request.amount,
                user_account(*pair),
                system_account(request.destination, request.asset),
                request.asset,
            )
        )

    def needs(self, request: Request) -> Pair | None:
        """The balance a request's risk check reads (loaded before the batch runs)."""
        if isinstance(request, PlaceOrder):
            return (request.user_id, self._asset(request.side))
        if isinstance(request, Withdraw):
            return (request.user_id, request.asset)
        if isinstance(request, AmendOrder) and (order := self.orders.get(request.order_id)):
            return (order.user_id, order.reserve_asset)
        return None

    def _asset(self, side: Side) -> str:
        return self.market.quote.code if side is Side.BUY else self.market.base.code

    def _place(self, request: PlaceOrder, order_id: int, batch: Batch) -> OrderState:
        spec = self.market.spec
        pair = (request.user_id, self._asset(request.side))
        available = self.funds.available(pair)
        budget = 0
        if request.type is OrderType.MARKET and request.side is Side.BUY:
            cost = self._cost_to_buy(request.qty)
            if cost == 0:
                raise rejection(RejectReason.NO_LIQUIDITY)
            # Room for fees rounded up per trade, as budget_for expects.
            hold = min(available, cost + (request.qty if spec.taker_fee_bps else 0))
            budget = budget_for(spec, hold, request.qty)
            if budget <= 0:
                raise InsufficientFunds("not enough to buy any of it at the book's prices")
        elif request.type is OrderType.MARKET:
            hold = request.qty * spec.base_units_per_lot
        else:
            hold = limit_hold(spec, request.side, request.price, request.qty)
        if hold > available:
            raise InsufficientFunds(f"this order needs {self._amount(pair[1], hold)}")
        command = Place(
            owner=request.user_id,
            side=request.side,
            price=request.price,
            qty=request.qty,
            type=request.type,
            tif=request.tif,
            post_only=request.post_only,
            stp=request.stp,
            order_id=order_id,
            client_order_id=request.client_order_id,
            quote_budget=budget,
        )
        order = OrderState(
            id=order_id,
            user_id=request.user_id,
            market=self.market.symbol,
            side=request.side,
            type=request.type.value,
            tif=request.tif.value,
            post_only=request.post_only,
            price=request.price,
            qty=request.qty,
            client_order_id=request.client_order_id,
            reserve_asset=pair[1],
        )

        def hold_funds() -> None:
            self.orders[order_id] = order
            self._move(order, hold, batch)

        self._run(command, batch, on_accept=hold_funds)
        return order

    def _amend(self, request: AmendOrder, order: OrderState, batch: Batch) -> OrderState:
        price = order.price if request.price is None else request.price
        qty = order.qty if request.qty is None else request.qty
        hold = limit_hold(self.market.spec, order.side, price, max(0, qty - order.filled))
        extra = hold - order.reserved
        pair = (order.user_id, order.reserve_asset)
        if extra > self.funds.available(pair):
            raise InsufficientFunds(f"this change needs {self._amount(pair[1], extra)} more")
        self._run(Amend(order.id, order.user_id, request.price, request.qty), batch)
        return order

    # The book's events ------------------------------------------------------------------------

    def _run(self, command: Command, batch: Batch, on_accept: Any = None) -> None:
        events = self.book.apply(command)
        seq = self.book.seq
        batch.journal.append((seq, encode(command)))
        self._transfer_ids = (f"{self.market.symbol}:{seq}:{n}" for n in itertools.count())
        if events and type(events[0]) is Rejected:
            raise rejection(events[0].reason)
        for event in events:
            self._on(event, batch, on_accept)

    def _on(self, event: Event, batch: Batch, on_accept: Any) -> None:
        kind = type(event)
        if kind is BookDelta:
            assert isinstance(event, BookDelta)
            batch.deltas[(event.side, event.price)] = event.qty
        elif kind is Trade:
            assert isinstance(event, Trade)
            self._settle(event, batch)
        elif kind is Accepted:
            if on_accept is not None:
                on_accept()
        elif kind is Expired:
            assert isinstance(event, Expired)
            self._close(self.orders[event.order_id], OrderStatus.EXPIRED, batch)
        elif kind is Cancelled:
            assert isinstance(event, Cancelled)
            order = self.orders[event.order_id]
            if event.open == 0:
                self._close(order, OrderStatus.CANCELLED, batch)
            else:  # self-trade decrement: the order shrank and holds less
                order.qty -= event.qty
                self._rehold(order, event.open, batch)
        elif kind is Amended:
            assert isinstance(event, Amended)
            order = self.orders[event.order_id]
            order.price, order.qty = event.price, event.qty
            self._rehold(order, event.open, batch)

    def adopt(self, orders: dict[int, OrderState]) -> None:
        """Open orders as recovered from the database."""
        self.orders = orders
        self.held = Counter()
        for order in orders.values():
            self.held[(order.user_id, order.reserve_asset)] += order.reserved

    def _settle(self, trade: Trade, batch: Batch) -> None:
        spec, market = self.market.spec, self.market
        maker, taker = self.orders[trade.maker_order_id], self.orders[trade.taker_order_id]
        buyer, seller = (taker, maker) if trade.taker_side is Side.BUY else (maker, taker)
        buyer_fee = trade.taker_fee if buyer is taker else trade.maker_fee
        seller_fee = trade.taker_fee if seller is taker else trade.maker_fee
        base_units = trade.qty * spec.base_units_per_lot
        base, quote = market.base.code, market.quote.code
        buyer.reserved -= trade.value + buyer_fee
        seller.reserved -= base_units
        self.held[(buyer.user_id, quote)] -= trade.value + buyer_fee
        self.held[(seller.user_id, base)] -= base_units
        self._pay(ESCROW, (buyer.user_id, base), base_units, batch)
        self._pay(ESCROW, (seller.user_id, quote), trade.value - seller_fee, batch)
        if buyer_fee + seller_fee:
            self._transfer(
                system_account(ESCROW, quote),
                system_account(FEES, quote),
                quote,
                buyer_fee + seller_fee,
                "trade_fee",
                batch,
            )
        now = utcnow()
        trade_id = self.next_trade_id()
        batch.trades.append(
            {
                "id": trade_id,
                "market": market.symbol,
                "price": trade.price,
                "qty": trade.qty,
                "value": trade.value,
                "taker_side": trade.taker_side.value,
                "maker_order_id": maker.id,
                "taker_order_id": taker.id,
                "maker_user_id": maker.user_id,
                "taker_user_id": taker.user_id,
                "maker_fee": trade.maker_fee,
                "taker_fee": trade.taker_fee,
                "at": now,
                "points_paid": False,
            }
        )
        for order, fee, liquidity in (
            (maker, trade.maker_fee, "maker"),
            (taker, trade.taker_fee, "taker"),
        ):
            order.filled += trade.qty
            order.cost += trade.value
            order.fee += fee
            order.updated_at = now
            batch.orders[order.id] = order
            batch.fills.append(
                {
                    "trade_id": trade_id,
                    "order_id": order.id,
                    "user_id": order.user_id,
                    "side": order.side.value,
                    "price": trade.price,
                    "qty": trade.qty,
                    "fee": fee,
                    "liquidity": liquidity,
                    "at": now,
                }
            )
        if maker.filled == maker.qty:
            self._close(maker, OrderStatus.FILLED, batch)
        if taker.filled == taker.qty:
            self._close(taker, OrderStatus.FILLED, batch)

    # Funds ------------------------------------------------------------------------------------

    def _rehold(self, order: OrderState, open_lots: int, batch: Batch) -> None:
        """Hold exactly what the order's open quantity needs: more after an amend up, less
        after one down or a decrement."""
        self._move(
            order,
            limit_hold(self.market.spec, order.side, order.price, open_lots) - order.reserved,
            batch,
        )

    def _close(self, order: OrderState, status: OrderStatus, batch: Batch) -> None:
        """The order is done: what its hold did not spend goes back."""
        order.status = status
        order.updated_at = utcnow()
        self._move(order, -order.reserved, batch)
        self.orders.pop(order.id, None)
        batch.orders[order.id] = order

    def _move(self, order: OrderState, amount: int, batch: Batch) -> None:
        """Into escrow (positive) or back out of it (negative), for ``order``."""
        if amount == 0:
            batch.orders[order.id] = order
            return
        pair = (order.user_id, order.reserve_asset)
        user, escrow = user_account(*pair), system_account(ESCROW, pair[1])
        if amount > 0:
            self.funds.debit(pair, amount)
            self._transfer(user, escrow, pair[1], amount, "order_hold", batch)
        else:
            batch.credits[pair] += -amount
            self._transfer(escrow, user, pair[1], -amount, "order_release", batch)
        batch.pairs.add(pair)
        order.reserved += amount
        self.held[pair] += amount
        batch.orders[order.id] = order

    def _pay(self, source: str, pair: Pair, amount: int, batch: Batch) -> None:
        if amount <= 0:
            return
        batch.credits[pair] += amount
        batch.pairs.add(pair)
        self._transfer(
            system_account(source, pair[1]), user_account(*pair), pair[1], amount, "trade", batch
        )

    def _transfer(
        self, debit: str, credit: str, asset: str, amount: int, code: str, batch: Batch
    ) -> None:
        batch.transfers.append(
            TransferRequest(next(self._transfer_ids), code, amount, debit, credit, asset)
        )

    # Reading ----------------------------------------------------------------------------------

    def _cost_to_buy(self, qty: int) -> int:
        """What buying ``qty`` lots from the asks would cost with the taker fee (a market buy's
        hold); the whole book's worth when it holds less."""
        spec = self.market.spec
        _, asks = self.book.depth(1_000_000)
        cost, left = 0, qty
        for price, size in asks:
            take = min(left, size)
            value = spec.value(price, take)
            cost += value + spec.taker_fee(value)
            left -= take
            if not left:
                break
        return cost

    def _amount(self, asset: str, units: int) -> str:
        return f"{ASSETS[asset].format(units)} {asset}"
