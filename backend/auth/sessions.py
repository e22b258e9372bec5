"""Session tokens: a JWT in an HttpOnly cookie, also accepted as ``Authorization: Bearer``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jwt
from litestar import Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.security.jwt import JWTCookieAuth, Token

from backend.config import Settings
from backend.resources import Resources
from backend.users.models import User

COOKIE_NAME = "simplrefq_session"
# Routes that carry this opt key are public; everything else needs a session.
PUBLIC = {"exclude_from_auth": True}


async def retrieve_user(
    token: Token, connection: ASGIConnection[Any, Any, Any, Any]
) -> User | None:
    """Look the user up on every request, so a role change or removal takes effect at once."""
    resources: Resources = connection.app.state.resources
    try:
        user_id = int(token.sub)
    except ValueError:
        return None
    async with resources.db.reads() as session:
        return await session.get(User, user_id)


def build_auth(settings: Settings) -> JWTCookieAuth[User, Token]:
    return JWTCookieAuth[User, Token](
        token_secret=settings.auth.jwt_secret,
        retrieve_user_handler=retrieve_user,
        default_token_expiration=timedelta(seconds=settings.auth.token_ttl_seconds),
        key=COOKIE_NAME,
        secure=settings.auth.cookie_secure,
        samesite=settings.auth.cookie_samesite,
        exclude=["^/schema", "^/static/"],
    )


def issue_token(auth: JWTCookieAuth[User, Token], user_id: int) -> str:
    """The claims Litestar's middleware reads back, encoded straight with PyJWT: its own
    ``create_token`` deep-copies a dataclass per token, a tenth of a sign-in's CPU time."""
    now = int(time.time())
    lifetime = int(auth.default_token_expiration.total_seconds())
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, auth.token_secret, algorithm=auth.algorithm)


def session_response(
    auth: JWTCookieAuth[User, Token], user_id: int, body: dict[str, Any], status_code: int
) -> Response[dict[str, Any]]:
    token = issue_token(auth, user_id)
    cookie = Cookie(
        key=auth.key,
        value=token,
        path="/",
        httponly=True,
        secure=auth.secure,
        samesite=auth.samesite,
        max_age=int(auth.default_token_expiration.total_seconds()),
    )
    return Response({**body, "token": token}, status_code=status_code, cookies=[cookie])
