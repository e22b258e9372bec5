"""Session tokens: a JWT naming a session row, in an HttpOnly cookie or as ``Bearer``.

One rule decides which credential a request uses, for the middleware and the CSRF guard
alike: an ``Authorization`` header, when present, is the credential, and it must read
``Bearer <token>`` (anything else is a 401, never a fall-through to the cookie); without the
header, the session cookie is.  Every request then looks up its user joined with the
session, so a logout, a role change or an admin's "sign out everywhere" ends the token at
once, in every process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTCookieAuth, JWTCookieAuthenticationMiddleware, Token

from backend.auth.models import AuthSession
from backend.auth.service import active_user, user_id_of, valid_session_id
from backend.config import Settings
from backend.db.engine import Database
from backend.errors import Unauthorized
from backend.users.models import User

COOKIE_NAME = "simplrefq_session"
# Routes that carry this opt key are public; everything else needs a session.
PUBLIC = {"exclude_from_auth": True}
_REQUIRED_CLAIMS = ["exp", "sub", "sid"]


@dataclass(frozen=True, slots=True)
class Credential:
    kind: Literal["bearer", "cookie"]
    token: str


def credential(connection: ASGIConnection[Any, Any, Any, Any]) -> Credential | None:
    """The credential this request authenticates with, decided before anything checks it."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise Unauthorized(
                "the Authorization header must read 'Bearer <token>'", code="bad_authorization"
            )
        return Credential("bearer", token)
    cookie = connection.cookies.get(COOKIE_NAME)
    return Credential("cookie", cookie) if cookie else None


class SessionAuthMiddleware(JWTCookieAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        found = credential(connection)
        if found is None:
            raise NotAuthorizedException("sign in first")
        return await self.authenticate_token(encoded_token=found.token, connection=connection)


def build_auth(settings: Settings, db: Database) -> JWTCookieAuth[User, Token]:
    async def retrieve_user(token: Token, _: ASGIConnection[Any, Any, Any, Any]) -> User | None:
        """The user, if the token's session is live: a logout or a role change counts at once."""
        user_id, session_id = user_id_of(token.sub), token.extras.get("sid")
        if user_id is None or not valid_session_id(session_id):
            return None
        async with db.reads() as session:
            return await active_user(session, user_id, session_id)

    return JWTCookieAuth[User, Token](
        token_secret=settings.auth.jwt_secret,
        retrieve_user_handler=retrieve_user,
        default_token_expiration=timedelta(seconds=settings.auth.token_ttl_seconds),
        key=COOKIE_NAME,
        secure=settings.auth.cookie_secure,
        samesite=settings.auth.cookie_samesite,
        exclude=["^/schema", "^/static/"],
        require_claims=_REQUIRED_CLAIMS,
        authentication_middleware_class=SessionAuthMiddleware,
    )


def issue_token(auth: JWTCookieAuth[User, Token], session: AuthSession) -> str:
    """The claims Litestar's middleware reads back, encoded straight with PyJWT: its own
    ``create_token`` deep-copies a dataclass per token, a tenth of a sign-in's CPU time."""
    claims = {
        "sub": str(session.user_id),
        "sid": session.id,
        "iat": int(time.time()),
        "exp": int(session.expires_at.timestamp()),
    }
    return jwt.encode(claims, auth.token_secret, algorithm=auth.algorithm)


def session_response(
    auth: JWTCookieAuth[User, Token],
    session: AuthSession,
    body: dict[str, Any],
    status_code: int,
) -> Response[dict[str, Any]]:
    token = issue_token(auth, session)
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


@dataclass(frozen=True, slots=True)
class SessionIdentity:
    """Who a long-lived connection (a WebSocket) speaks for, and until when."""

    user_id: int
    session_id: str
    expires_at: datetime


def token_claims(auth: JWTCookieAuth[User, Token], token: str) -> SessionIdentity | None:
    """A token's session, by signature and expiry alone (the database says if it is live)."""
    try:
        claims = jwt.decode(
            token,
            auth.token_secret,
            algorithms=[auth.algorithm],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError:
        return None
    user_id, session_id = user_id_of(claims.get("sub")), claims.get("sid")
    expires = claims.get("exp")
    if user_id is None or not valid_session_id(session_id) or not isinstance(expires, int):
        return None
    return SessionIdentity(user_id, session_id, datetime.fromtimestamp(expires, UTC))


async def still_active(db: Database, identity: SessionIdentity) -> bool:
    async with db.reads() as session:
        return await active_user(session, identity.user_id, identity.session_id) is not None


async def authenticate(
    db: Database, auth: JWTCookieAuth[User, Token], token: str
) -> SessionIdentity | None:
    """The live session a token names, or None (bad signature, expired, revoked, no user)."""
    identity = token_claims(auth, token)
    if identity is None or not await still_active(db, identity):
        return None
    return identity


SignedIn = Request[User, Any, Any]
"""A request the auth middleware let through: ``request.user`` is the signed-in user."""


def signed_in_id(request: SignedIn) -> int:
    """The signed-in user's id (a stored user always has one)."""
    assert request.user.id is not None
    return request.user.id
