"""Who may do what: an admin changes a user's role or ends their sessions, audited."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from backend.audit.service import AuditContext, record
from backend.auth.service import revoke_user_sessions
from backend.errors import Conflict
from backend.users.models import Role, User
from backend.users.service import get_user


async def set_role(session: AsyncSession, audit: AuditContext, user_id: int, role: Role) -> User:
    """Change a user's role.  Admins cannot demote themselves, so a lone admin cannot lock
    everybody out by mistake."""
    user = await get_user(session, user_id)
    if audit.actor_id == user_id and role is not Role.ADMIN:
        raise Conflict("admins cannot remove their own admin role", code="self_demotion")
    previous = user.role
    user.role = role.value
    session.add(user)
    details: dict[str, Any] = {"from": previous, "to": role.value}
    if previous != role.value:
        # Tokens issued under the old role end with it: the user signs in again.
        details["sessions_revoked"] = await revoke_user_sessions(session, user_id)
    await record(session, audit, "user.set_role", target=f"user:{user_id}", details=details)
    return user


async def sign_out_everywhere(session: AsyncSession, audit: AuditContext, user_id: int) -> int:
    """End every session of a user (a lost phone, a leaked token); returns how many."""
    await get_user(session, user_id)
    revoked = await revoke_user_sessions(session, user_id)
    await record(
        session,
        audit,
        "user.revoke_sessions",
        target=f"user:{user_id}",
        details={"sessions_revoked": revoked},
    )
    return revoked
