"""Role guards for privileged routes."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from backend.errors import Forbidden, Unauthorized
from backend.users.models import Role, User


def requires_role(minimum: Role) -> Guard:
    """A guard that admits users whose role is ``minimum`` or above."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, User):
            raise Unauthorized("sign in first")
        if not user.role_enum.at_least(minimum):
            raise Forbidden(f"this needs the {minimum.value} role", code="role_required")

    guard.__name__ = f"requires_{minimum.value}"
    return guard


moderator_only = requires_role(Role.MODERATOR)
admin_only = requires_role(Role.ADMIN)
