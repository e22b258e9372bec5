"""One bad price, one answer: every route that takes a price or a quantity refuses the same
value with the same status and code (README, "Errors and the contract"), on SQLite and on
PostgreSQL + Redis.  They all parse through ``backend/market/grid.py``; this holds them to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from backend.market.grid import InvalidAmount, parse_steps
from backend.trading.service import Trading
from tests.helpers import Server, signed_in

TON = "TON-USDT"  # tick 0.0001, lot 0.01

# value -> (status, code) for a price.  Whatever the schema lets through is the parser's.
BAD_PRICES: dict[Any, tuple[int, str]] = {
    "abc": (400, "invalid_price"),
    "-1": (400, "invalid_price"),
    "0": (400, "invalid_price"),
    "0.0000": (400, "invalid_price"),
    ".": (400, "invalid_price"),
    "1e400": (400, "invalid_price"),
    "1e3": (400, "invalid_price"),
    "NaN": (400, "invalid_price"),
    "Infinity": (400, "invalid_price"),
    "+5": (400, "invalid_price"),
    " 5": (400, "invalid_price"),
    "6_000": (400, "invalid_price"),
    "5,25": (400, "invalid_price"),
    "5.00001": (400, "invalid_price"),  # off the 0.0001 grid
    "1" + "0" * 30: (400, "invalid_price"),  # past every bound
    "": (400, "bad_request"),
    "9" * 41: (400, "bad_request"),  # longer than any price the schema takes
    5: (400, "bad_request"),  # a number, not a decimal string
}
BAD_QUANTITIES: dict[Any, tuple[int, str]] = {
    "abc": (400, "invalid_quantity"),
    "-1": (400, "invalid_quantity"),
    "0": (400, "invalid_quantity"),
    "1e400": (400, "invalid_quantity"),
    "NaN": (400, "invalid_quantity"),
    "0.001": (400, "invalid_quantity"),  # off the 0.01 lot grid
    "1" + "0" * 30: (400, "invalid_quantity"),
    "": (400, "bad_request"),
    5: (400, "bad_request"),
}


@dataclass
class Routes:
    """Every route that takes a price or a quantity, for one signed-in user with an open bid."""

    client: httpx.AsyncClient
    auth: dict[str, str]
    order_id: int

    async def send(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, str]:
        response = await self.client.request(method, path, json=body, headers=self.auth)
        return response.status_code, response.json().get("error", "")

    def price_routes(self) -> dict[str, Callable[[Any], Awaitable[tuple[int, str]]]]:
        order = f"/api/orders/{self.order_id}"
        return {
            "POST /api/orders": lambda price: self.send(
                "POST", "/api/orders", {"market": TON, "side": "buy", "price": price, "qty": "1"}
            ),
            "PATCH /api/orders/{id}": lambda price: self.send("PATCH", order, {"price": price}),
            "POST /api/alerts": lambda price: self.send(
                "POST", "/api/alerts", {"market": TON, "price": price, "direction": "above"}
            ),
        }

    def quantity_routes(self) -> dict[str, Callable[[Any], Awaitable[tuple[int, str]]]]:
        order = f"/api/orders/{self.order_id}"
        return {
            "POST /api/orders": lambda qty: self.send(
                "POST", "/api/orders", {"market": TON, "side": "buy", "price": "1", "qty": qty}
            ),
            "PATCH /api/orders/{id}": lambda qty: self.send("PATCH", order, {"qty": qty}),
        }


@pytest.fixture
async def routes(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> AsyncIterator[Routes]:
    trading: Trading = server.app.state.resources.trading
    for _ in range(500):  # with Redis, the books start once this process is elected
        if trading.running:
            break
        await asyncio.sleep(0.02)
    assert trading.running
    _, auth = await signed_in(client, new_telegram_id())
    assert (await client.post("/api/faucet", headers=auth)).status_code == 200
    # Far below any price the other tests trade at: it rests, so it can be amended.
    placed = await client.post(
        "/api/orders",
        json={"market": TON, "side": "buy", "price": "1.0000", "qty": "1"},
        headers=auth,
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    yield Routes(client, auth, order_id)
    await client.delete(f"/api/orders/{order_id}", headers=auth)


async def test_every_route_refuses_a_bad_price_alike(routes: Routes) -> None:
    answers = {
        (value, route): await send(value)
        for value in BAD_PRICES
        for route, send in routes.price_routes().items()
    }
    expected = {
        (value, route): BAD_PRICES[value] for value in BAD_PRICES for route in routes.price_routes()
    }
    assert answers == expected
    alerts = await routes.client.get("/api/alerts?status=all", headers=routes.auth)
    assert alerts.json() == []
    orders = await routes.client.get("/api/orders?status=all", headers=routes.auth)
    assert [(o["id"], o["price"]) for o in orders.json()] == [(routes.order_id, "1.0000")]


async def test_every_route_refuses_a_bad_quantity_alike(routes: Routes) -> None:
    answers = {
        (value, route): await send(value)
        for value in BAD_QUANTITIES
        for route, send in routes.quantity_routes().items()
    }
    expected = {
        (value, route): BAD_QUANTITIES[value]
        for value in BAD_QUANTITIES
        for route in routes.quantity_routes()
    }
    assert answers == expected


@pytest.mark.parametrize(
    ("text", "steps"),
    [("5.2031", 52031), ("5.", 50000), (".0001", 1), ("0005.2000", 52000), ("9" * 4, 99990000)],
)
def test_the_parser_takes_plain_decimals_on_the_grid(text: str, steps: int) -> None:
    assert parse_steps(text, Decimal("0.0001"), "price", 10**9) == steps


def test_the_parser_refuses_past_the_bound_and_names_the_field() -> None:
    assert parse_steps("0.1000", Decimal("0.0001"), "price", 1000) == 1000
    with pytest.raises(InvalidAmount) as refused:
        parse_steps("0.1001", Decimal("0.0001"), "price", 1000)
    assert refused.value.code == "invalid_price"
    with pytest.raises(InvalidAmount) as refused:
        parse_steps("0.015", Decimal("0.01"), "quantity", 10**8)
    assert refused.value.code == "invalid_quantity"
    assert "not a multiple of the lot size 0.01" in refused.value.message
