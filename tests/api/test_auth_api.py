"""Sign-in over HTTP against the served app, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from backend.testing.telegram import (
    BOT_ID,
    base_fields,
    hmac_only_init_data,
    signature_only_init_data,
    signed_init_data,
)
from backend.users.models import User
from tests.helpers import RunningServer, Server, make_settings, with_backend


async def user_count(server: Server, telegram_id: int) -> int:
    async with server.app.state.resources.db.reads() as session:
        return int(
            await session.scalar(select(func.count()).where(User.telegram_id == telegram_id))
        )


async def sign_in(client: httpx.AsyncClient, init_data: str, **extra: str) -> httpx.Response:
    return await client.post("/api/auth/telegram", json={"init_data": init_data, **extra})


async def test_valid_init_data_creates_user_and_returns_a_session(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    response = await sign_in(client, signed_init_data(base_fields(telegram_id)))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    user = body["user"]
    assert (user["telegram_id"], user["username"], user["first_name"]) == (
        telegram_id,
        f"ada{telegram_id}",
        "Ada",
    )
    assert user["is_premium"] is True and user["language_code"] == "en"
    assert user["photo_url"].startswith("https://t.me/")
    assert user["role"] == "user"
    # Times are UTC-aware on both databases (SQLite keeps no zone of its own).
    assert user["created_at"].endswith(("+00:00", "Z"))

    cookie = response.headers["set-cookie"]
    assert "simplrefq_session=" in cookie
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie

    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["user"]["id"] == user["id"]
    assert me.json()["referral_link"] == (
        f"https://t.me/SimplRefQBot?startapp=ref_{user['referral_code']}"
    )

    again = await sign_in(client, signed_init_data(base_fields(telegram_id)))
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["user"]["id"] == user["id"]
    assert await user_count(server, telegram_id) == 1


async def test_session_cookie_alone_authenticates(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    response = await sign_in(client, hmac_only_init_data(base_fields(telegram_id)))
    token = response.json()["token"]
    async with server.client(cookies={"simplrefq_session": token}) as browser:
        me = await browser.get("/api/me")
    assert me.status_code == 200 and me.json()["user"]["telegram_id"] == telegram_id


async def test_ed25519_signature_alone_signs_in(
    client: httpx.AsyncClient, telegram_id: int
) -> None:
    response = await sign_in(client, signature_only_init_data(base_fields(telegram_id)))
    assert response.status_code == 201, response.text


# vector -> (initData maker, the error code it must get)
BAD_VECTORS = {
    "tampered": lambda tid: signed_init_data(base_fields(tid)).replace("Ada", "Eve"),
    "wrong_token": lambda tid: hmac_only_init_data(
        base_fields(tid), bot_token=f"{BOT_ID}:AAEotherTokenXXXXXXXXXXXXXXXXXXXXXXXX"
    ),
    "expired": lambda tid: signed_init_data(base_fields(tid, auth_date=int(time.time()) - 7200)),
    "missing_hash": lambda tid: (
        signed_init_data(base_fields(tid)).split("&hash=")[0].replace("signature=", "x_signature=")
    ),
    "duplicated_key": lambda tid: (
        signed_init_data(base_fields(tid))
        + "&user="
        + quote(f'{{"id":{tid},"first_name":"Mallory"}}')
    ),
    "non_utf8": lambda tid: signed_init_data(base_fields(tid)) + "&x=%FF",
    "oversized": lambda tid: signed_init_data(base_fields(tid, pad="p" * 5000)),
    "non_ascii_hash": lambda tid: (
        hmac_only_init_data(base_fields(tid)).rsplit("&hash=", 1)[0] + "&hash=%C3%A9"
    ),
}
EXPECTED_CODE = {
    "tampered": "init_data_bad_signature",
    "wrong_token": "init_data_bad_signature",
    "expired": "init_data_expired",
    "missing_hash": "init_data_missing_hash",
    "duplicated_key": "init_data_duplicate_key",
    "non_utf8": "init_data_malformed",
    "oversized": "init_data_too_large",
    "non_ascii_hash": "init_data_bad_signature",
}


@pytest.mark.parametrize("vector", sorted(BAD_VECTORS))
async def test_bad_init_data_is_401_and_creates_no_user(
    server: Server, client: httpx.AsyncClient, telegram_id: int, vector: str
) -> None:
    response = await sign_in(client, BAD_VECTORS[vector](telegram_id))
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == EXPECTED_CODE[vector] and body["detail"]
    assert "set-cookie" not in response.headers
    assert await user_count(server, telegram_id) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{not json",
        b"[]",
        b'{"init_data": 5}',
        b'{"init_data": "x", "admin": true}',
        b"",
        b'{"init_data": "\xed\xa0\x80"}',
    ],
)
async def test_malformed_body_is_401_with_a_clear_error(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        "/api/auth/telegram", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "bad_body"


async def test_huge_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/telegram",
        content=b'{"init_data":"' + b"a" * 100_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


async def test_sign_in_must_be_json_so_no_form_can_post_it(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    init_data = signed_init_data(base_fields(telegram_id))
    as_text = await client.post(
        "/api/auth/telegram",
        content=json.dumps({"init_data": init_data}),
        headers={"content-type": "text/plain"},
    )
    assert as_text.status_code == 401 and as_text.json()["error"] == "bad_body"
    assert await user_count(server, telegram_id) == 0


async def test_concurrent_first_sign_ins_make_one_user(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    init_data = signed_init_data(base_fields(telegram_id))
    responses = await asyncio.gather(*(sign_in(client, init_data) for _ in range(8)))
    assert {r.status_code for r in responses} <= {200, 201}
    assert [r.status_code for r in responses].count(201) == 1
    assert len({r.json()["user"]["id"] for r in responses}) == 1
    assert await user_count(server, telegram_id) == 1


async def test_api_needs_a_session(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/me")).status_code == 401
    forged = await client.get("/api/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401
    assert forged.json()["error"] == "unauthorized"


async def test_referral_is_recorded_once_never_self_never_overwritten(
    client: httpx.AsyncClient, new_telegram_id
) -> None:
    referrer_tid, referee_tid, late_tid = new_telegram_id(), new_telegram_id(), new_telegram_id()
    referrer = (await sign_in(client, signed_init_data(base_fields(referrer_tid)))).json()["user"]
    ref = f"ref_{referrer['referral_code']}"

    # The signed start_param of a direct link records the referral on creation.
    referee = await sign_in(client, signed_init_data(base_fields(referee_tid, start_param=ref)))
    assert referee.json()["user"]["referred_by_id"] == referrer["id"]

    # A referrer cannot refer themselves, however they ask.
    self_ref = await sign_in(client, signed_init_data(base_fields(referrer_tid, start_param=ref)))
    assert self_ref.json()["user"]["referred_by_id"] is None

    # Another referral for an existing user does not overwrite the first.
    other = (await sign_in(client, signed_init_data(base_fields(late_tid)))).json()["user"]
    again = await sign_in(
        client,
        signed_init_data(base_fields(referee_tid, start_param=f"ref_{other['referral_code']}")),
    )
    assert again.json()["user"]["referred_by_id"] == referrer["id"]

    token = (await sign_in(client, signed_init_data(base_fields(referrer_tid)))).json()["token"]
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["referees"] == 1


async def test_unsigned_start_param_fallback_and_unknown_codes(
    client: httpx.AsyncClient, new_telegram_id
) -> None:
    referrer = (await sign_in(client, signed_init_data(base_fields(new_telegram_id())))).json()
    code = referrer["user"]["referral_code"]
    via_button = await sign_in(
        client, signed_init_data(base_fields(new_telegram_id())), start_param=f"ref_{code}"
    )
    assert via_button.json()["user"]["referred_by_id"] == referrer["user"]["id"]
    for junk in ("ref_doesnotexist", "ref_", "promo_x", "ref_<script>"):
        response = await sign_in(
            client, signed_init_data(base_fields(new_telegram_id())), start_param=junk
        )
        assert response.status_code == 201
        assert response.json()["user"]["referred_by_id"] is None


async def test_demo_sign_in_exists_outside_production_only(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/demo", json={})
    assert response.status_code == 201
    user = response.json()["user"]
    assert user["is_demo"] is True and user["telegram_id"] < 0


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, telegram_id: int) -> None:
    token = (await sign_in(client, signed_init_data(base_fields(telegram_id)))).json()["token"]
    response = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    assert (
        'simplrefq_session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )


async def test_a_changed_profile_is_updated_an_unchanged_one_is_not_rewritten(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    first = (await sign_in(client, signed_init_data(base_fields(telegram_id)))).json()["user"]
    async with server.app.state.resources.db.reads() as session:
        before = await session.scalar(select(User.last_seen_at).where(User.id == first["id"]))

    same = (await sign_in(client, signed_init_data(base_fields(telegram_id)))).json()["user"]
    assert same == first
    async with server.app.state.resources.db.reads() as session:
        after = await session.scalar(select(User.last_seen_at).where(User.id == first["id"]))
    assert after == before

    fields = base_fields(telegram_id)
    fields["user"] = fields["user"].replace(f'"ada{telegram_id}"', '"ada_renamed"')
    renamed = (await sign_in(client, signed_init_data(fields))).json()["user"]
    assert renamed["username"] == "ada_renamed" and renamed["id"] == first["id"]
    assert renamed["referral_code"] == first["referral_code"]


async def test_many_concurrent_sign_ins_do_not_exhaust_a_small_pool(
    backend: dict[str, Any], tmp_path: Path, new_telegram_id
) -> None:
    """More requests than connections, each reading then writing: none may wait on itself."""
    settings = make_settings(tmp_path, **with_backend(backend, database={"pool_size": 2}))
    async with RunningServer(settings) as server, server.client() as http:
        ids = [new_telegram_id() for _ in range(24)]
        started = time.monotonic()
        responses = await asyncio.gather(
            *(sign_in(http, signed_init_data(base_fields(tid))) for tid in ids)
        )
        assert [r.status_code for r in responses] == [201] * len(ids)
        again = await asyncio.gather(
            *(sign_in(http, signed_init_data(base_fields(tid))) for tid in ids)
        )
        assert [r.status_code for r in again] == [200] * len(ids)
        assert time.monotonic() - started < 10
