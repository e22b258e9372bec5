"""HTTP: sign-in from Telegram initData, demo sign-in (embedded default only), sign-out."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import SkipValidation
from litestar.security.jwt import JWTCookieAuth, Token

from backend.auth.initdata import InitDataError, TelegramKeys, validate_init_data
from backend.auth.ratelimit import RATE_LIMIT_OPT, RateLimiter
from backend.auth.service import open_session, revoke_session
from backend.auth.sessions import COOKIE_NAME, PUBLIC, session_response
from backend.auth.signin import sign_in
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import Unauthorized
from backend.inputs import refuse_nul
from backend.users import service
from backend.users.models import User
from backend.users.schemas import UserProfile

# A sign-in body is a short JSON object (initData is under 4 KB); larger ones get a 413.
MAX_BODY_BYTES = 16 * 1024
T = TypeVar("T")


class TelegramSignIn(msgspec.Struct, forbid_unknown_fields=True):
    init_data: str
    start_param: str | None = None
    """Fallback for launches whose initData has no start_param (inline web_app buttons)."""


class DemoSignIn(msgspec.Struct, forbid_unknown_fields=True):
    start_param: str | None = None


_decode_sign_in = msgspec.json.Decoder(TelegramSignIn)
_decode_demo = msgspec.json.Decoder(DemoSignIn)


def telegram_keys(settings: Settings) -> TelegramKeys:
    return TelegramKeys(
        bot_token=settings.bot.token,
        bot_id=settings.bot.bot_id,
        public_key=settings.auth.telegram_public_key_bytes,
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]
    opt = PUBLIC

    @post(
        "/telegram",
        opt={RATE_LIMIT_OPT: "signin"},
        request_max_body_size=MAX_BODY_BYTES,
        responses={200: ResponseSpec(dict[str, Any], description="Signed in, a known user")},
    )
    async def telegram(
        self,
        request: Request[Any, Any, Any],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
        limiter: NamedDependency[RateLimiter],
        auth: NamedDependency[SkipValidation[JWTCookieAuth[User, Token]]],
    ) -> Response[dict[str, Any]]:
        """Exchange Telegram initData for a session (JWT in the body and an HttpOnly cookie)."""
        body = await _parse_body(request, _decode_sign_in)
        try:
            data = validate_init_data(
                body.init_data,
                telegram_keys(settings),
                max_age=timedelta(seconds=settings.auth.init_data_max_age_seconds),
            )
        except InitDataError as exc:
            raise Unauthorized(exc.message, code=f"init_data_{exc.code}") from exc
        refuse_nul("init_data", data.model_dump(mode="json"))
        assert data.user is not None
        await limiter.hit("signin_user", str(data.user.id))
        profile = service.TelegramProfile(
            telegram_id=data.user.id,
            first_name=data.user.first_name or "",
            username=data.user.username,
            last_name=data.user.last_name,
            language_code=data.user.language_code,
            is_premium=bool(data.user.is_premium),
            photo_url=data.user.photo_url,
        )
        signed = await sign_in(uow, profile, start_param=data.start_param or body.start_param)
        return await _signed_in(auth, uow, signed)

    @post("/logout", status_code=204, opt={"exclude_from_auth": False})
    async def logout(
        self, request: Request[User, Token, Any], uow: NamedDependency[UnitOfWork]
    ) -> Response[None]:
        """End the session: its token stops working everywhere, and the cookie is cleared."""
        await revoke_session(uow.session, request.auth.extras["sid"])
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response


class DemoAuthController(Controller):
    """Registered only when demo sign-in is allowed (never in production)."""

    path = "/api/auth"
    tags = ["auth"]
    opt = PUBLIC

    @post("/demo", opt={RATE_LIMIT_OPT: "signin"}, request_max_body_size=MAX_BODY_BYTES)
    async def demo(
        self,
        request: Request[Any, Any, Any],
        uow: NamedDependency[UnitOfWork],
        auth: NamedDependency[SkipValidation[JWTCookieAuth[User, Token]]],
    ) -> Response[dict[str, Any]]:
        """A fresh demo user for a browser without Telegram."""
        body = await _parse_body(request, _decode_demo)
        # Negative ids never collide with Telegram's, which are positive.
        demo_id = -secrets.randbelow(2**52) - 1
        profile = service.TelegramProfile(telegram_id=demo_id, first_name="Demo", username=None)
        signed = await sign_in(uow, profile, start_param=body.start_param, is_demo=True)
        return await _signed_in(auth, uow, signed)


async def _parse_body(request: Request[Any, Any, Any], decoder: msgspec.json.Decoder[T]) -> T:
    # Only JSON: a cross-site HTML form cannot send it, so nobody can be signed in (into an
    # attacker's account) by a page they merely visit.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Unauthorized("sign-in body must be application/json", code="bad_body")
    raw = await request.body()
    try:
        body = decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise Unauthorized(f"bad sign-in body: {exc}", code="bad_body") from exc
    refuse_nul("body", msgspec.to_builtins(body))
    return body


async def _signed_in(
    auth: JWTCookieAuth[User, Token], uow: UnitOfWork, signed: service.SignIn
) -> Response[dict[str, Any]]:
    user = signed.user
    assert user.id is not None
    # Committed with the request's unit of work, before the response (and its token) leaves.
    session = await open_session(uow.session, user.id, auth.default_token_expiration)
    body = {"user": msgspec.to_builtins(UserProfile.of(user)), "created": signed.created}
    return session_response(auth, session, body, status_code=201 if signed.created else 200)
