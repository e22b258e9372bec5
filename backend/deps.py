"""Dependencies of a request: its unit of work and audit context, and the services handed over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from backend.audit.service import AuditContext
from backend.db.engine import Database
from backend.db.uow import UnitOfWork, unit_of_work


def provided(service: Any) -> Provide:
    """A dependency that is one of the app's long-lived services, as built at start-up."""

    def provide() -> Any:
        return service

    return Provide(provide, use_cache=True, sync_to_thread=False)


async def provide_uow(db: NamedDependency[Database]) -> AsyncIterator[UnitOfWork]:
    """One transaction per request: committed when the handler returns, rolled back if it raises."""
    async with unit_of_work(db) as uow:
        yield uow


def provide_audit_context(request: Request[Any, Any, Any]) -> AuditContext:
    user = request.scope.get("user")
    return AuditContext(
        actor_id=getattr(user, "id", None),
        ip=request.client.host if request.client else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


request_dependencies = {
    "uow": Provide(provide_uow),
    "audit": Provide(provide_audit_context, sync_to_thread=False),
}
