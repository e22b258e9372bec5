"""Rate limits per address and per user, in memory (embedded) and in Redis (production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from backend.auth.service import open_session
from backend.auth.sessions import issue_token
from backend.auth.signin import sign_in
from backend.db.uow import unit_of_work
from backend.testing.telegram import base_fields, signed_init_data
from backend.users import service
from tests.helpers import RunningServer, Server, make_settings, with_backend


async def mint_session(server: Server, telegram_id: int) -> dict[str, str]:
    """A user and a token made directly, so sign-in limits do not get in the way."""
    auth = server.app.state.auth
    async with unit_of_work(server.app.state.resources.db) as uow:
        signed = await sign_in(uow, service.TelegramProfile(telegram_id=telegram_id))
        assert signed.user.id is not None
        session = await open_session(uow.session, signed.user.id, auth.default_token_expiration)
    return {"Authorization": f"Bearer {issue_token(auth, session)}"}


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1


async def test_sign_in_and_writes_are_limited_per_address_and_per_user(
    backend: dict[str, Any], tmp_path: Path, new_telegram_id
) -> None:
    limits = {"signin_per_ip": "3/minute", "write_per_user": "2/minute", "write_per_ip": "5/minute"}
    settings = make_settings(tmp_path, **with_backend(backend, ratelimit=limits))
    async with RunningServer(settings) as server, server.client() as client:
        await server.app.state.resources.limiter.reset()
        for _ in range(3):
            init_data = signed_init_data(base_fields(new_telegram_id()))
            ok = await client.post("/api/auth/telegram", json={"init_data": init_data})
            assert ok.status_code == 201
        init_data = signed_init_data(base_fields(new_telegram_id()))
        assert_limited(await client.post("/api/auth/telegram", json={"init_data": init_data}))

        # Reads are not limited.  (A logout ends its session: each write uses a session of
        # its own, of the same user.)
        alice_id, bob_id, carol_id = new_telegram_id(), new_telegram_id(), new_telegram_id()
        alice = [await mint_session(server, alice_id) for _ in range(3)]
        for _ in range(5):
            assert (await client.get("/api/me", headers=alice[0])).status_code == 200

        # Per user: Alice's third write is refused...
        for session in alice[:2]:
            assert (await client.post("/api/auth/logout", headers=session)).status_code == 204
        assert_limited(await client.post("/api/auth/logout", headers=alice[2]))
        # ...while Bob, from the same address, still may write until the address is spent.
        for _ in range(2):
            bob = await mint_session(server, bob_id)
            assert (await client.post("/api/auth/logout", headers=bob)).status_code == 204
        carol = [await mint_session(server, carol_id) for _ in range(2)]
        assert (await client.post("/api/auth/logout", headers=carol[0])).status_code == 204
        assert_limited(await client.post("/api/auth/logout", headers=carol[1]))
