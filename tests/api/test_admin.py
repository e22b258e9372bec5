"""Role guards on every privileged route, tried with each wrong role; the audit log."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.users.models import Role
from tests.helpers import Server, audit_entries, grant, signed_in

# (method, path template, minimum role, JSON body)
PRIVILEGED = [
    ("GET", "/api/admin/users", Role.MODERATOR, None),
    ("PUT", "/api/admin/users/{target}/role", Role.ADMIN, {"role": "moderator"}),
    ("POST", "/api/admin/users/{target}/sessions/revoke", Role.ADMIN, None),
    ("GET", "/api/admin/audit", Role.ADMIN, None),
]


@pytest.mark.parametrize(("method", "path", "minimum", "body"), PRIVILEGED)
async def test_privileged_routes_refuse_lesser_roles(
    server: Server, client: httpx.AsyncClient, new_telegram_id, method, path, minimum, body
) -> None:
    target, _ = await signed_in(client, new_telegram_id())
    url = path.format(target=target["id"])

    anonymous = await client.request(method, url, json=body)
    assert anonymous.status_code == 401

    for role in Role:
        user, headers = await signed_in(client, new_telegram_id())
        await grant(server, user["id"], role)
        response = await client.request(method, url, json=body, headers=headers)
        if role.at_least(minimum):
            assert response.status_code == 200, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"] == "role_required"


async def test_admin_changes_a_role_and_it_is_audited(
    server: Server, client: httpx.AsyncClient, new_telegram_id
) -> None:
    admin, admin_headers = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    target, target_headers = await signed_in(client, new_telegram_id())

    response = await client.put(
        f"/api/admin/users/{target['id']}/role", json={"role": "moderator"}, headers=admin_headers
    )
    assert response.status_code == 200 and response.json()["role"] == "moderator"
    # The change ends the target's sessions; signed in again, the new role holds.
    assert (await client.get("/api/admin/users", headers=target_headers)).status_code == 401
    _, target_headers = await signed_in(client, target["telegram_id"])
    assert (await client.get("/api/admin/users", headers=target_headers)).status_code == 200

    entries = [e for e in await audit_entries(server, "user.set_role") if e.actor_id == admin["id"]]
    assert len(entries) == 1
    assert entries[0].target == f"user:{target['id']}"
    assert entries[0].details == {"from": "user", "to": "moderator", "sessions_revoked": 1}
    assert entries[0].ip == "127.0.0.1" and entries[0].request_id

    log = await client.get("/api/admin/audit?action=user.set_role", headers=admin_headers)
    assert any(row["actor_id"] == admin["id"] for row in log.json())


async def test_bad_role_change_requests_are_refused_cleanly(
    server: Server, client: httpx.AsyncClient, new_telegram_id
) -> None:
    admin, headers = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    bad_role = await client.put(
        f"/api/admin/users/{admin['id']}/role", json={"role": "god"}, headers=headers
    )
    assert bad_role.status_code == 400
    missing = await client.put(
        "/api/admin/users/999999999/role", json={"role": "user"}, headers=headers
    )
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    self_demotion = await client.put(
        f"/api/admin/users/{admin['id']}/role", json={"role": "user"}, headers=headers
    )
    assert self_demotion.status_code == 409 and self_demotion.json()["error"] == "self_demotion"
    bad_limit = await client.get("/api/admin/users?limit=100000", headers=headers)
    assert bad_limit.status_code == 400


async def test_audit_log_is_append_only_in_the_database(
    server: Server, client: httpx.AsyncClient, new_telegram_id
) -> None:
    user, _ = await signed_in(client, new_telegram_id())
    await grant(server, user["id"], Role.MODERATOR)
    engine = server.app.state.resources.db.engine
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text(statement))
    assert await audit_entries(server, "forged") == []
