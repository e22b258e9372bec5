"""HTTP: the signed-in user's profile; user administration for moderators and admins."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from backend.audit.service import AuditContext, list_entries, record
from backend.auth import roles
from backend.auth.guards import admin_only, moderator_only
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.inputs import INT32_MAX, Id32
from backend.openapi import errors
from backend.users import service
from backend.users.links import referral_link
from backend.users.models import User
from backend.users.schemas import Me, RoleChange, SessionsRevoked, UserProfile


class MeController(Controller):
    path = "/api/me"
    tags = ["users"]

    @get()
    async def me(
        self,
        request: Request[User, Any, Any],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
    ) -> Me:
        """The signed-in user's profile and referral link."""
        user = request.user
        assert user.id is not None
        referees = await service.count_referees(uow.session, user.id)
        return Me(
            user=UserProfile.of(user),
            referral_link=referral_link(settings, user),
            referees=referees,
        )


class AdminController(Controller):
    path = "/api/admin"
    tags = ["admin"]
    # Every route here needs moderator at least; admin-only routes add their own guard.
    guards = [moderator_only]

    @get("/users")
    async def list_users(
        self,
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        # No table keyed by an INTEGER id holds more rows than that id's range.
        offset: Annotated[int, QueryParameter(ge=0, le=INT32_MAX)] = 0,
    ) -> list[UserProfile]:
        """Users, oldest first (moderators and admins)."""
        users = await service.list_users(uow.session, limit=limit, offset=offset)
        await record(uow.session, audit, "user.list", details={"limit": limit, "offset": offset})
        return [UserProfile.of(user) for user in users]

    @put("/users/{user_id:int}/role", guards=[admin_only], responses=errors(409))
    async def set_role(
        self,
        user_id: Id32,
        data: JSONBody[RoleChange],
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
    ) -> UserProfile:
        """Grant or remove a role (admins only; audited)."""
        user = await roles.set_role(uow.session, audit, user_id, data.role)
        return UserProfile.of(user)

    @post("/users/{user_id:int}/sessions/revoke", guards=[admin_only], status_code=200)
    async def revoke_sessions(
        self,
        user_id: Id32,
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
    ) -> SessionsRevoked:
        """Sign a user out everywhere: every token of theirs stops working (admins only;
        audited).  Their open sockets lose their private topics at the next re-check."""
        revoked = await roles.sign_out_everywhere(uow.session, audit, user_id)
        return SessionsRevoked(user_id=user_id, revoked=revoked)

    @get("/audit", guards=[admin_only])
    async def audit_log(
        self,
        uow: NamedDependency[UnitOfWork],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        before_id: Annotated[int | None, QueryParameter(ge=1, le=INT32_MAX)] = None,
        action: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> list[dict[str, Any]]:
        """The audit log, newest first (admins only)."""
        entries = await list_entries(uow.session, limit=limit, before_id=before_id, action=action)
        return [entry.model_dump(mode="json") for entry in entries]
