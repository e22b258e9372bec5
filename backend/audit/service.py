"""The one helper every privileged action writes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.audit.models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is acting, and from where; built once per request or job."""

    actor_id: int | None
    ip: str | None = None
    request_id: str | None = None


async def record(
    session: AsyncSession,
    context: AuditContext,
    action: str,
    *,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction: it commits with the action or not at all."""
    entry = AuditEntry(
        actor_id=context.actor_id,
        action=action,
        target=target,
        details=details or {},
        ip=context.ip,
        request_id=context.request_id,
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession, *, limit: int, before_id: int | None = None, action: str | None = None
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())  # type: ignore[union-attr]
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)  # type: ignore[operator]
    if action is not None:
        query = query.where(AuditEntry.action == action)
    result = await session.exec(query.limit(limit))
    return list(result.all())
