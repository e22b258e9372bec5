"""Dependencies every controller may ask for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from backend.audit.service import AuditContext
from backend.config import Settings
from backend.db.uow import UnitOfWork, unit_of_work
from backend.points.service import Points
from backend.resources import Resources


def provide_resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


def provide_settings(state: State) -> Settings:
    settings: Settings = state.resources.settings
    return settings


def provide_points(state: State) -> Points:
    points: Points = state.resources.points
    return points


async def provide_uow(state: State) -> AsyncIterator[UnitOfWork]:
    """One transaction per request: committed when the handler returns, rolled back if it raises."""
    async with unit_of_work(state.resources.db) as uow:
        yield uow


def provide_audit_context(request: Request[Any, Any, Any]) -> AuditContext:
    user = request.scope.get("user")
    return AuditContext(
        actor_id=getattr(user, "id", None),
        ip=request.client.host if request.client else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


dependencies = {
    "resources": Provide(provide_resources, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "uow": Provide(provide_uow),
    "points": Provide(provide_points, sync_to_thread=False),
    "audit": Provide(provide_audit_context, sync_to_thread=False),
}
