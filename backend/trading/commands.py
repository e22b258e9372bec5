"""Requests to a market's writer, refusals, and the journal's encoding of book commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.errors import Conflict, DomainError, NotFound
from backend.trading.engine import (
    Amend,
    Cancel,
    Command,
    OrderType,
    Place,
    RejectReason,
    SelfTrade,
    Side,
    TimeInForce,
)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    user_id: int
    side: Side
    type: OrderType
    price: int
    """Ticks; 0 for a market order."""
    qty: int
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    client_order_id: str | None = None
    stp: SelfTrade = SelfTrade.CANCEL_NEWEST


@dataclass(frozen=True, slots=True)
class CancelOrder:
    user_id: int
    order_id: int


@dataclass(frozen=True, slots=True)
class AmendOrder:
    user_id: int
    order_id: int
    price: int | None = None
    qty: int | None = None


@dataclass(frozen=True, slots=True)
class Deposit:
    """Funds from outside the books (the faucet; later, chain deposits).  Credited in a
    writer's batch like a trade's proceeds, so the funds mirror and the ledger move together."""

    user_id: int
    asset: str
    amount: int
    source: str
    """The system account it comes from (``faucet``)."""
    transfer_id: str


# The system account withdrawals wait in, debited, until paid on chain or returned.
WITHDRAWING = "withdrawing"


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Funds leaving the books (a chain withdrawal): debited from what the user has available,
    in a writer's batch like an order's hold, so the mirror never lets the same money be spent
    twice."""

    user_id: int
    asset: str
    amount: int
    destination: str
    """The system account it goes to (``withdrawing``: in flight to a chain)."""
    transfer_id: str


OrderRequest = PlaceOrder | CancelOrder | AmendOrder
"""What users send (and other processes forward)."""
Move = Deposit | Withdraw
"""Funds into or out of the books from outside them."""
Request = OrderRequest | Move


class OrderRejected(DomainError):
    """The order was not accepted; its class and ``code`` say why (the API's reason)."""


class InvalidPrice(OrderRejected):
    code = "invalid_price"


class InvalidQuantity(OrderRejected):
    code = "invalid_quantity"


class InvalidOrder(OrderRejected):
    code = "invalid_order"


class BelowMinNotional(OrderRejected):
    code = "below_min_notional"


class BookRefused(OrderRejected):
    """A well-formed order the book, as it stands, does not take (it may later)."""


class PostOnlyWouldTake(BookRefused):
    code = "post_only_would_take"


class FokNotFillable(BookRefused):
    code = "fok_not_fillable"


class NoLiquidity(BookRefused):
    code = "no_liquidity"


class InsufficientFunds(OrderRejected):
    code = "insufficient_funds"


class OrderNotFound(NotFound):
    code = "order_not_found"


class OrderClosed(Conflict):
    code = "order_closed"


class WriterUnavailable(DomainError):
    """The order books cannot answer now (starting, busy, out of reach): the same request, with
    the same client order id, may be sent again."""

    code = "retry"


# The engine's reasons, as the API names them.
_REASONS: dict[RejectReason, tuple[type[DomainError], str]] = {
    RejectReason.INVALID_PRICE: (InvalidPrice, "the price is outside what this market takes"),
    RejectReason.INVALID_QUANTITY: (InvalidQuantity, "the quantity is outside the limits"),
    RejectReason.INVALID_ORDER: (InvalidOrder, "this combination of options is not taken"),
    RejectReason.BELOW_MIN_NOTIONAL: (BelowMinNotional, "the order is below the minimum"),
    RejectReason.POST_ONLY_WOULD_TAKE: (
        PostOnlyWouldTake,
        "a post-only order must not trade on arrival",
    ),
    RejectReason.FOK_NOT_FILLABLE: (FokNotFillable, "not enough on the book to fill it all"),
    RejectReason.NO_LIQUIDITY: (NoLiquidity, "nothing on the other side of the book"),
    RejectReason.UNKNOWN_ORDER: (OrderClosed, "the order is no longer open"),
    RejectReason.NOT_OWNER: (OrderNotFound, "no such order"),
    RejectReason.DUPLICATE_ORDER_ID: (InvalidOrder, "duplicate order id"),
}


def rejection(reason: RejectReason) -> DomainError:
    refusal, message = _REASONS[reason]
    return refusal(message)


def encode(command: Command) -> dict[str, Any]:
    """A book command as the journal stores it."""
    if type(command) is Place:
        return {
            "t": "place",
            "id": command.order_id,
            "owner": command.owner,
            "side": command.side.value,
            "price": command.price,
            "qty": command.qty,
            "type": command.type.value,
            "tif": command.tif.value,
            "post_only": command.post_only,
            "stp": command.stp.value,
            "coid": command.client_order_id,
            "budget": command.quote_budget,
        }
    if type(command) is Cancel:
        return {"t": "cancel", "id": command.order_id, "owner": command.owner}
    assert type(command) is Amend
    return {
        "t": "amend",
        "id": command.order_id,
        "owner": command.owner,
        "price": command.price,
        "qty": command.qty,
    }


def decode(data: dict[str, Any]) -> Command:
    kind = data["t"]
    if kind == "place":
        return Place(
            owner=data["owner"],
            side=Side(data["side"]),
            price=data["price"],
            qty=data["qty"],
            type=OrderType(data["type"]),
            tif=TimeInForce(data["tif"]),
            post_only=data["post_only"],
            stp=SelfTrade(data["stp"]),
            order_id=data["id"],
            client_order_id=data["coid"],
            quote_budget=data["budget"],
        )
    if kind == "cancel":
        return Cancel(order_id=data["id"], owner=data["owner"])
    if kind == "amend":
        return Amend(data["id"], data["owner"], price=data["price"], qty=data["qty"])
    raise ValueError(f"journal: unknown command {kind!r}")
