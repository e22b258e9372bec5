"""Wallets through the real server, on SQLite and on PostgreSQL + Redis: challenges, linking
with ton_proof and SIWE, one wallet one user, the award paid once, unlinking (audited), and
signing in with a linked wallet."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import Server, audit_entries, signed_in
from tests.wallet_helpers import EthWallet, TonWallet, siwe_text


async def challenge(client: httpx.AsyncClient, kind: str) -> str:
    response = await client.post("/api/wallets/challenge", json={"kind": kind})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == kind and body["domain"] == "app.example.test"
    return str(body["challenge"])


async def ton_body(client: httpx.AsyncClient, wallet: TonWallet, **options: Any) -> dict:
    return wallet.body(await challenge(client, "ton_proof"), int(time.time()), **options)


async def siwe_body(client: httpx.AsyncClient, wallet: EthWallet, **options: Any) -> dict:
    nonce = await challenge(client, "siwe")
    return wallet.body(siwe_text(wallet.address, nonce, datetime.now(UTC), **options))


async def points(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    return int((await client.get("/api/points", headers=auth)).json()["balance"])


async def test_link_list_and_unlink_both_kinds_with_the_award_paid_once(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    ton, eth = TonWallet("w5r1"), EthWallet()
    linked = await client.post("/api/wallets/link", json=await ton_body(client, ton), headers=auth)
    assert linked.status_code == 201, linked.text
    assert linked.json()["address"] == ton.raw and linked.json()["kind"] == "ton_proof"
    assert await points(client, auth) == 250
    second = await client.post("/api/wallets/link", json=await siwe_body(client, eth), headers=auth)
    assert second.status_code == 201, second.text
    assert second.json()["address"] == eth.address
    again = await client.post("/api/wallets/link", json=await ton_body(client, ton), headers=auth)
    assert again.status_code == 200 and again.json()["id"] == linked.json()["id"]
    assert await points(client, auth) == 250  # once per user, whatever else they link
    listed = (await client.get("/api/wallets", headers=auth)).json()
    assert [(w["kind"], w["address"]) for w in listed] == [
        ("ton_proof", ton.raw),
        ("siwe", eth.address),
    ]
    wallet_id = linked.json()["id"]
    assert (await client.delete(f"/api/wallets/{wallet_id}", headers=auth)).status_code == 204
    gone = await client.delete(f"/api/wallets/{wallet_id}", headers=auth)
    assert gone.status_code == 404 and gone.json()["error"] == "wallet_not_found"
    assert [w["kind"] for w in (await client.get("/api/wallets", headers=auth)).json()] == ["siwe"]
    entries = [e for e in await audit_entries(server, "wallet.unlink") if e.actor_id == user["id"]]
    assert [e.details["address"] for e in entries] == [ton.raw]
    links = [e for e in await audit_entries(server, "wallet.link") if e.actor_id == user["id"]]
    assert len(links) == 2
    # Linking it again after unlinking pays nothing either.
    relinked = await client.post(
        "/api/wallets/link", json=await ton_body(client, ton), headers=auth
    )
    assert relinked.status_code == 201
    assert await points(client, auth) == 250


async def test_one_wallet_one_user(
    client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> None:
    _, alice = await signed_in(client, new_telegram_id())
    _, bob = await signed_in(client, new_telegram_id())
    ton, eth = TonWallet(), EthWallet()
    for make in (lambda: ton_body(client, ton), lambda: siwe_body(client, eth)):
        assert (await client.post("/api/wallets/link", json=await make(), headers=alice)).is_success
        taken = await client.post("/api/wallets/link", json=await make(), headers=bob)
        assert taken.status_code == 409 and taken.json()["error"] == "wallet_taken"
    # Bob cannot unlink Alice's wallet either.
    alices = (await client.get("/api/wallets", headers=alice)).json()
    other = await client.delete(f"/api/wallets/{alices[0]['id']}", headers=bob)
    assert other.status_code == 404
    assert await points(client, bob) == 0


async def test_a_challenge_is_single_use_and_per_kind(
    client: httpx.AsyncClient, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    wallet = TonWallet("v3r2")
    body = await ton_body(client, wallet)
    assert (await client.post("/api/wallets/link", json=body, headers=auth)).status_code == 201
    replay = await client.post("/api/wallets/link", json=body, headers=auth)
    assert replay.status_code == 401 and replay.json()["error"] == "ton_proof_unknown_challenge"
    # A payload we never issued, and a SIWE nonce used as a ton_proof payload.
    made_up = wallet.body("f" * 32, int(time.time()))
    refused = await client.post("/api/wallets/link", json=made_up, headers=auth)
    assert refused.json()["error"] == "ton_proof_unknown_challenge"
    nonce = await challenge(client, "siwe")
    crossed = wallet.body(nonce, int(time.time()))
    refused = await client.post("/api/wallets/link", json=crossed, headers=auth)
    assert refused.json()["error"] == "ton_proof_unknown_challenge"
    eth = EthWallet()
    siwe = await siwe_body(client, eth)
    assert (await client.post("/api/wallets/link", json=siwe, headers=auth)).status_code == 201
    replay = await client.post("/api/wallets/link", json=siwe, headers=auth)
    assert replay.status_code == 401 and replay.json()["error"] == "siwe_unknown_challenge"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("ton_forged", "ton_proof_bad_signature"),
        ("ton_expired", "ton_proof_expired"),
        ("ton_future", "ton_proof_future"),
        ("ton_domain", "ton_proof_wrong_domain"),
        ("ton_address", "ton_proof_wrong_address"),
        ("siwe_forged", "siwe_bad_signature"),
        ("siwe_expired", "siwe_expired"),
        ("siwe_domain", "siwe_wrong_domain"),
        ("siwe_chain", "siwe_wrong_chain"),
    ],
)
async def test_bad_proofs_get_401_and_link_nothing(
    client: httpx.AsyncClient, telegram_id: int, case: str, code: str
) -> None:
    _, auth = await signed_in(client, telegram_id)
    ton, eth = TonWallet(), EthWallet()
    now = datetime.now(UTC)
    bodies = {
        "ton_forged": lambda: ton_body(client, ton, signer=TonWallet().key),
        "ton_expired": lambda: _ton_at(client, ton, int(time.time()) - 3600),
        "ton_future": lambda: _ton_at(client, ton, int(time.time()) + 600),
        "ton_domain": lambda: ton_body(client, ton, domain="evil.example"),
        "ton_address": lambda: ton_body(client, ton, address=TonWallet().raw),
        "siwe_forged": lambda: _siwe_signed_by(client, eth, EthWallet()),
        "siwe_expired": lambda: _siwe_issued(client, eth, now - timedelta(hours=1)),
        "siwe_domain": lambda: siwe_body(client, eth, domain="evil.example"),
        "siwe_chain": lambda: siwe_body(client, eth, chain_id=137),
    }
    refused = await client.post("/api/wallets/link", json=await bodies[case](), headers=auth)
    assert refused.status_code == 401 and refused.json()["error"] == code, refused.text
    assert (await client.get("/api/wallets", headers=auth)).json() == []
    assert await points(client, auth) == 0


async def _ton_at(client: httpx.AsyncClient, wallet: TonWallet, timestamp: int) -> dict:
    return wallet.body(await challenge(client, "ton_proof"), timestamp)


async def _siwe_signed_by(client: httpx.AsyncClient, wallet: EthWallet, signer: EthWallet) -> dict:
    nonce = await challenge(client, "siwe")
    return wallet.body(siwe_text(wallet.address, nonce, datetime.now(UTC)), signer=signer)


async def _siwe_issued(client: httpx.AsyncClient, wallet: EthWallet, issued: datetime) -> dict:
    nonce = await challenge(client, "siwe")
    return wallet.body(siwe_text(wallet.address, nonce, issued))


async def test_bad_input_gets_400_with_a_code(client: httpx.AsyncClient, telegram_id: int) -> None:
    _, auth = await signed_in(client, telegram_id)
    cases = [
        {"kind": "ton_proof", "address": "0:00"},
        {"kind": "siwe", "address": "0x00"},
        {"kind": "siwe", "address": "0x00", "message": "hello", "signature": "0x00"},
        {**TonWallet().body("a" * 32, int(time.time())), "state_init": "%%%"},
        {"kind": "bitcoin", "address": "1abc"},
    ]
    for body in cases:
        answer = await client.post("/api/wallets/link", json=body, headers=auth)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"] in ("bad_wallet_input", "siwe_malformed", "bad_request")
    challenge_bad = await client.post("/api/wallets/challenge", json={"kind": "btc"})
    assert challenge_bad.status_code == 400


async def test_no_session_is_401(client: httpx.AsyncClient) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    for headers in ({}, bad):
        assert (await client.get("/api/wallets", headers=headers)).status_code == 401
        body = TonWallet().body("a" * 32, int(time.time()))
        linked = await client.post("/api/wallets/link", json=body, headers=headers)
        assert linked.status_code == 401
        assert (await client.delete("/api/wallets/1", headers=headers)).status_code == 401


async def test_sign_in_with_a_linked_wallet_gives_a_working_session(
    client: httpx.AsyncClient, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    ton, eth = TonWallet(), EthWallet()
    for make in (lambda: ton_body(client, ton), lambda: siwe_body(client, eth)):
        unlinked = await client.post("/api/auth/wallet", json=await make())
        assert unlinked.status_code == 401 and unlinked.json()["error"] == "wallet_not_linked"
        assert (await client.post("/api/wallets/link", json=await make(), headers=auth)).is_success
        signed = await client.post("/api/auth/wallet", json=await make())
        assert signed.status_code == 200, signed.text
        assert signed.json()["user"]["id"] == user["id"]
        assert "simplrefq_session" in signed.cookies
        session = {"Authorization": f"Bearer {signed.json()['token']}"}
        me = await client.get("/api/me", headers=session)
        assert me.status_code == 200 and me.json()["user"]["id"] == user["id"]
        assert len((await client.get("/api/wallets", headers=session)).json()) >= 1
    forged = await client.post(
        "/api/auth/wallet", json=await ton_body(client, ton, signer=TonWallet().key)
    )
    assert forged.status_code == 401 and forged.json()["error"] == "ton_proof_bad_signature"
    form = await client.post(
        "/api/auth/wallet",
        content=b'{"kind": "siwe", "address": "0x00"}',
        headers={"content-type": "text/plain"},
    )
    assert form.status_code in (400, 401)
