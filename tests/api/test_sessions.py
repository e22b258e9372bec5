"""Sessions: tokens name a revocable session, over HTTP and on open sockets (both backends)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import structlog
import websockets
from sqlalchemy import delete, select, update

from backend.auth.models import AuthSession
from backend.auth.service import prune_sessions
from backend.ops.logging import RedactSecrets, configure_logging
from backend.testing.telegram import base_fields, signed_init_data
from backend.users.models import Role, User
from tests.helpers import (
    Server,
    audit_entries,
    grant,
    hub_of,
    receive,
    send,
    signed_in,
    subscribe,
    ws_url,
)

COOKIE = "simplrefq_session"


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def forged(server: Server, sub: Any, sid: str | None = None) -> str:
    """A token signed with the server's own key, naming whatever we like."""
    now = int(time.time())
    claims = {"sub": sub, "sid": sid or secrets.token_hex(16), "iat": now, "exp": now + 600}
    return jwt.encode(claims, server.settings.auth.jwt_secret, algorithm="HS256")


async def me(client: httpx.AsyncClient, **kwargs: Any) -> int:
    return (await client.get("/api/me", **kwargs)).status_code


async def delete_user(server: Server, user_id: int) -> None:
    async with server.app.state.resources.db.sessions() as session:
        await session.exec(delete(User).where(User.id == user_id))  # type: ignore[arg-type]
        await session.commit()


async def test_logout_ends_the_session_for_bearer_and_cookie(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    _, headers = await signed_in(client, new_telegram_id())
    async with server.client(cookies={COOKIE: token_of(headers)}) as browser:
        assert await me(browser) == 200
        assert await me(client, headers=headers) == 200
        response = await browser.post("/api/auth/logout")
        assert response.status_code == 204
        assert await me(client, headers=headers) == 401
    async with server.client(cookies={COOKIE: token_of(headers)}) as browser:
        assert await me(browser) == 401
    # Another session of the same user is not touched by this logout.
    _, again = await signed_in(client, new_telegram_id())
    assert await me(client, headers=again) == 200


async def test_role_change_through_the_api_ends_the_users_sessions(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    admin, admin_headers = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    target, target_headers = await signed_in(client, target_id := new_telegram_id())
    _, second_device = await signed_in(client, target_id)
    url = f"/api/admin/users/{target['id']}/role"
    assert (await client.put(url, json={"role": "moderator"}, headers=admin_headers)).is_success
    assert await me(client, headers=target_headers) == 401
    assert await me(client, headers=second_device) == 401
    assert await me(client, headers=admin_headers) == 200


async def test_admin_signs_a_user_out_everywhere_and_it_is_audited(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    admin, admin_headers = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    target, phone = await signed_in(client, target_id := new_telegram_id())
    _, laptop = await signed_in(client, target_id)
    url = f"/api/admin/users/{target['id']}/sessions/revoke"

    assert (await client.post(url)).status_code == 401
    for role in (Role.USER, Role.MODERATOR):
        user, headers = await signed_in(client, new_telegram_id())
        await grant(server, user["id"], role)
        refused = await client.post(url, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"] == "role_required"
    assert await me(client, headers=phone) == 200

    response = await client.post(url, headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"user_id": target["id"], "revoked": 2}
    assert await me(client, headers=phone) == 401
    assert await me(client, headers=laptop) == 401
    _, fresh = await signed_in(client, target_id)  # signing in again works
    assert await me(client, headers=fresh) == 200

    entries = [e for e in await audit_entries(server, "user.revoke_sessions")]
    (entry,) = [e for e in entries if e.target == f"user:{target['id']}"]
    assert entry.actor_id == admin["id"] and entry.details == {"sessions_revoked": 2}
    unknown = await client.post(
        "/api/admin/users/2147483000/sessions/revoke", headers=admin_headers
    )
    assert unknown.status_code == 404


async def test_tokens_of_deleted_or_unknown_users_open_nothing(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    user, headers = await signed_in(client, new_telegram_id())
    await delete_user(server, user["id"])
    # The next sign-up never inherits the deleted id (SQLite AUTOINCREMENT, Postgres serial).
    newcomer, _ = await signed_in(client, new_telegram_id())
    assert newcomer["id"] > user["id"]
    assert await me(client, headers=headers) == 401

    nobody = forged(server, "2147483000")
    for token, topic in ((token_of(headers), f"user:{user['id']}"), (nobody, "user:2147483000")):
        assert await me(client, headers={"Authorization": f"Bearer {token}"}) == 401
        bearer = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(ws_url(server), additional_headers=bearer) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await receive(ws)
        assert ws.close_code == 4001
        async with websockets.connect(ws_url(server)) as ws:
            await send(ws, op="auth", token=token)
            assert (await receive(ws))["code"] == "unauthorized"
            await send(ws, op="subscribe", topics=[topic])
            assert (await receive(ws))["code"] == "forbidden"


@pytest.mark.parametrize("sub", [str(2**70), 2**70, "0", "-5", "1e3", "", "７"])
async def test_a_token_whose_sub_names_no_possible_user_is_a_401(
    server: Server, client: httpx.AsyncClient, sub: Any
) -> None:
    response = await client.get(
        "/api/me", headers={"Authorization": f"Bearer {forged(server, sub)}"}
    )
    assert response.status_code == 401


async def test_tokens_in_the_url_authenticate_nothing(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    user, headers = await signed_in(client, new_telegram_id())
    async with websockets.connect(ws_url(server, f"?token={token_of(headers)}")) as ws:
        await send(ws, op="subscribe", topics=[f"user:{user['id']}"])
        assert (await receive(ws))["code"] == "forbidden"


async def test_a_cookie_socket_from_another_site_gets_no_private_topic(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    user, headers = await signed_in(client, new_telegram_id())
    mine = f"user:{user['id']}"
    cookie = {"Cookie": f"{COOKIE}={token_of(headers)}"}
    evil = {**cookie, "Origin": "https://evil.example"}
    async with websockets.connect(ws_url(server), additional_headers=evil) as ws:
        await send(ws, op="subscribe", topics=[mine])
        assert (await receive(ws))["code"] == "forbidden"
        await subscribe(ws, "prices")  # public topics stay open to any page
    for origin in (server.settings.app.base_url, server.url):
        own = {**cookie, "Origin": origin}
        async with websockets.connect(ws_url(server), additional_headers=own) as ws:
            await subscribe(ws, mine)


async def test_a_revoked_session_loses_its_private_topics_on_open_sockets(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(server.settings.auth, "socket_recheck_seconds", 0.2)
    user, headers = await signed_in(client, new_telegram_id())
    mine = f"user:{user['id']}"
    async with websockets.connect(ws_url(server)) as ws:
        await send(ws, op="auth", token=token_of(headers))
        assert await receive(ws) == {"op": "authed", "user_id": user["id"]}
        await subscribe(ws, mine)
        await subscribe(ws, "prices")
        assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
        ended = await receive(ws, within=3)
        while ended.get("topic") == "prices":  # its snapshot, when another test left one
            ended = await receive(ws, within=3)
        assert (ended["op"], ended["code"]) == ("error", "session_ended")
        await asyncio.sleep(0.1)
        await hub_of(server).publish(mine, "event", {"kind": "after logout"})
        await send(ws, op="ping")
        assert await receive(ws) == {"op": "pong"}  # nothing from the private topic came first
        await send(ws, op="subscribe", topics=[mine])
        assert (await receive(ws))["code"] == "forbidden"


async def test_sockets_per_address_are_capped(server: Server, monkeypatch: Any) -> None:
    monkeypatch.setattr(server.settings.hub, "max_sockets_per_address", 3)
    held = [await websockets.connect(ws_url(server)) for _ in range(3)]
    try:
        async with websockets.connect(ws_url(server)) as extra:
            with pytest.raises(websockets.ConnectionClosed):
                await receive(extra)
        assert (extra.close_code, extra.close_reason) == (
            4029,
            "too many sockets from this address",
        )
        await held.pop().close()
        await asyncio.sleep(0.1)
        async with websockets.connect(ws_url(server)) as again:
            await subscribe(again, "prices")
    finally:
        for ws in held:
            await ws.close()


async def test_the_credential_is_decided_before_the_csrf_guard(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    admin, headers = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    target, _ = await signed_in(client, new_telegram_id())
    url = f"/api/admin/users/{target['id']}/role"
    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    async with server.client(cookies={COOKIE: token_of(headers)}) as browser:
        for authorization in ("x", "Bearer", "Bearer not-a-jwt", f"Basic {token_of(headers)}"):
            forged_write = await browser.put(
                url,
                json={"role": "moderator"},
                headers={**cross_site, "Authorization": authorization},
            )
            assert forged_write.status_code == 401, authorization
        plain = await browser.put(url, json={"role": "moderator"}, headers=cross_site)
        assert plain.status_code == 403 and plain.json()["error"] == "cross_site"
    basic = {"Authorization": f"Basic {token_of(headers)}"}
    answer = await client.get("/api/me", headers=basic)
    assert answer.status_code == 401 and answer.json()["error"] == "bad_authorization"
    assert await me(client, headers={"Authorization": f"bearer {token_of(headers)}"}) == 200


@pytest.mark.parametrize("telegram_id", [0, -1, -(2**52), 2**53, 2**63])
async def test_init_data_with_an_impossible_telegram_id_is_a_401(
    client: httpx.AsyncClient, telegram_id: int
) -> None:
    response = await client.post(
        "/api/auth/telegram", json={"init_data": signed_init_data(base_fields(telegram_id))}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "init_data_bad_user_id"


def test_no_log_line_carries_a_token() -> None:
    token = jwt.encode({"sub": "1"}, "k" * 32, algorithm="HS256")
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", f"/ws?topics=prices&token={token}"),
        None,
    )
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert token not in line and "token=[redacted]" in line and "topics=prices" in line
    for text in (f"Authorization: Bearer {token}", f"Cookie: {COOKIE}={token}", token):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)
        RedactSecrets().filter(record)
        assert token not in record.getMessage()


def test_our_json_lines_carry_no_token_either(capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt.encode({"sub": "1"}, "k" * 32, algorithm="HS256")
    configure_logging("INFO")
    structlog.get_logger("test").info("request", path=f"/ws?token={token}", auth=f"Bearer {token}")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert token not in json.dumps(line) and line["path"] == "/ws?token=[redacted]"


async def test_expired_sessions_are_pruned(
    server: Server, client: httpx.AsyncClient, new_telegram_id: Any
) -> None:
    user, headers = await signed_in(client, new_telegram_id())
    _, kept = await signed_in(client, new_telegram_id())
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with server.app.state.resources.db.sessions() as session:
        # This user's session as if its day were over; only expired sessions go.
        await session.exec(
            update(AuthSession).where(AuthSession.user_id == user["id"]).values(expires_at=past)  # type: ignore[arg-type]
        )
        assert await prune_sessions(session, before=datetime.now(UTC)) >= 1
        await session.commit()
        left = await session.exec(select(AuthSession).where(AuthSession.user_id == user["id"]))  # type: ignore[arg-type]
        assert left.all() == []
    assert await me(client, headers=headers) == 401
    assert await me(client, headers=kept) == 200
