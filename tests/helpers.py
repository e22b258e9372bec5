"""Small helpers the HTTP tests share."""

from __future__ import annotations

import httpx
from sqlmodel import select

from backend.audit.models import AuditEntry
from backend.db.uow import unit_of_work
from backend.users import service
from backend.users.models import Role
from tests.conftest import Server
from tests.telegram import base_fields, signed_init_data


async def signed_in(client: httpx.AsyncClient, telegram_id: int) -> tuple[dict, dict[str, str]]:
    """Sign in as ``telegram_id``; returns the user and the Authorization header."""
    response = await client.post(
        "/api/auth/telegram", json={"init_data": signed_init_data(base_fields(telegram_id))}
    )
    assert response.status_code in (200, 201), response.text
    body = response.json()
    return body["user"], {"Authorization": f"Bearer {body['token']}"}


async def grant(server: Server, user_id: int, role: Role) -> None:
    """Test setup: the role is written straight to the row, so the user's sessions live on
    (a role change through the API or the CLI ends them, see test_sessions)."""
    async with unit_of_work(server.app.state.resources.db) as uow:
        user = await service.get_user(uow.session, user_id)
        user.role = role.value
        uow.session.add(user)


async def audit_entries(server: Server, action: str) -> list[AuditEntry]:
    async with server.app.state.resources.db.reads() as session:
        result = await session.exec(select(AuditEntry).where(AuditEntry.action == action))
        return list(result.all())
