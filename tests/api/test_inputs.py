"""No 500 for bad input: each request here once answered 500; now each is a 4xx with a stable
code (or a retryable 503), on SQLite and on PostgreSQL + Redis alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend.testing.telegram import base_fields, signed_init_data, user_fields
from backend.users.models import Role
from tests.helpers import POSTGRES_ADMIN_URL, RunningServer, Server, grant, make_settings, signed_in
from tests.helpers import temporary_database as new_database

DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code, response.text


async def admin(server: Server, client: httpx.AsyncClient, telegram_id: int) -> dict[str, str]:
    user, headers = await signed_in(client, telegram_id)
    await grant(server, user["id"], Role.ADMIN)
    return headers


@pytest.mark.parametrize("path", ["/api/orders", "/api/admin/points/grant"])
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT])
async def test_json_nested_too_deep_is_a_400(
    server: Server, client: httpx.AsyncClient, telegram_id: int, path: str, body: str
) -> None:
    headers = await admin(server, client, telegram_id)
    headers["Content-Type"] = "application/json"
    refused(await client.post(path, content=body, headers=headers), 400, "too_deep")


@pytest.mark.parametrize(
    "path",
    [
        "/api/points/history?before=1:%00",
        "/api/admin/audit?action=%00",
        "/api/admin/users?%00=1",
        "/api/markets/TON-USDT%00/book",
        "/static/app.js%00.css",
    ],
)
async def test_a_nul_in_the_url_is_a_400(
    server: Server, client: httpx.AsyncClient, telegram_id: int, path: str
) -> None:
    headers = await admin(server, client, telegram_id)
    refused(await client.get(path, headers=headers), 400, "nul_character")


async def test_a_nul_in_a_json_body_is_a_400(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> None:
    headers = await admin(server, client, new_telegram_id())
    target, _ = await signed_in(client, new_telegram_id())
    body = {"user_id": target["id"], "amount": 5, "note": "why\x00", "idempotency_key": "nul-1"}
    response = await client.post("/api/admin/points/grant", json=body, headers=headers)
    refused(response, 400, "nul_character")
    # Keys too: a NUL in a field name never reaches a struct's "unknown field" message.
    order = {"market": "TON-USDT", "side": "buy", "qty": "1", "price": "1", "\x00": 1}
    refused(await client.post("/api/orders", json=order, headers=headers), 400, "nul_character")


@pytest.mark.parametrize("field", ["first_name", "last_name", "username"])
async def test_a_nul_in_telegram_init_data_is_a_400(
    client: httpx.AsyncClient, telegram_id: int, field: str
) -> None:
    fields = base_fields(telegram_id)
    fields["user"] = json.dumps(user_fields(telegram_id, **{field: "Ada\x00"}))
    response = await client.post("/api/auth/telegram", json={"init_data": signed_init_data(fields)})
    refused(response, 400, "nul_character")
    start = {"init_data": signed_init_data(base_fields(telegram_id)), "start_param": "ref_\x00"}
    refused(await client.post("/api/auth/telegram", json=start), 400, "nul_character")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/users?offset=2925764465340280509300736"),
        ("GET", "/api/admin/users?offset=2147483648"),
        ("PUT", "/api/admin/users/51300923810916352000/role"),
        ("PUT", "/api/admin/users/2147483648/role"),
        ("GET", "/api/admin/audit?before_id=-81417017068462640"),
        ("GET", "/api/admin/audit?before_id=2147483648"),
        ("DELETE", "/api/orders/9223372036854775808"),
        ("GET", "/api/trades?before=9223372036854775808"),
        ("DELETE", "/api/alerts/9223372036854775808"),
    ],
)
async def test_numbers_beyond_the_columns_range_are_a_400(
    server: Server, client: httpx.AsyncClient, telegram_id: int, method: str, path: str
) -> None:
    headers = await admin(server, client, telegram_id)
    response = await client.request(method, path, json={"role": "user"}, headers=headers)
    refused(response, 400, "bad_request")


@pytest.mark.parametrize("amount", ['"5"', "1e3", "5.0", "true", "5.5"])
async def test_points_amounts_are_strictly_whole_numbers(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Callable[[], int], amount: str
) -> None:
    headers = await admin(server, client, new_telegram_id())
    headers["Content-Type"] = "application/json"
    target, _ = await signed_in(client, new_telegram_id())
    body = (
        f'{{"user_id": {target["id"]}, "amount": {amount}, "note": "strict",'
        f' "idempotency_key": "strict-{target["id"]}"}}'
    )
    response = await client.post("/api/admin/points/grant", content=body, headers=headers)
    refused(response, 400, "bad_request")
    assert response.json()["extra"][0]["key"] == "amount"
    whole = body.replace(f'"amount": {amount}', '"amount": 5')
    granted = await client.post("/api/admin/points/grant", content=whole, headers=headers)
    assert granted.status_code == 200 and granted.json()["amount"] == 5, granted.text


async def terminate_connections(database: str) -> None:
    killer = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await killer.close()


async def test_a_terminated_database_connection_is_a_retryable_503(
    tmp_path: Path, redis_url: str, new_telegram_id: Callable[[], int]
) -> None:
    """PostgreSQL restarted (or an operator killed our sessions): the next statement fails on
    a dead connection.  That request is a 503 with Retry-After; the pool then reconnects."""
    async with new_database() as url:
        settings = make_settings(
            tmp_path,
            database={"url": url},
            redis={"url": redis_url, "key_prefix": f"inputs-{new_telegram_id()}"},
        )
        async with RunningServer(settings) as server, server.client() as client:
            _, headers = await signed_in(client, new_telegram_id())
            assert (await client.get("/api/me", headers=headers)).status_code == 200
            name = url.rsplit("/", 1)[1]
            # The server's own background work (writers, leader leases) shares the pool and
            # may meet a dead connection first, and then the pool has reconnected before our
            # request: such a try answers 200.  Every answer must be 200 or the 503.
            answers = []
            for _ in range(10):
                await terminate_connections(name)
                response = await client.get("/api/me", headers=headers)
                answers.append(response.status_code)
                if response.status_code == 503:
                    refused(response, 503, "db_unavailable")
                    assert response.headers["Retry-After"] == "1"
                    break
                assert response.status_code == 200, response.text
            assert answers[-1] == 503, answers
            again = await client.get("/api/me", headers=headers)
            assert again.status_code == 200, again.text
