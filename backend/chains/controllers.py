"""HTTP: wallet challenges, linking, listing, unlinking, and signing in with a linked wallet."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, SkipValidation
from litestar.security.jwt import JWTCookieAuth, Token

from backend.audit.service import AuditContext
from backend.auth.ratelimit import RATE_LIMIT_OPT, RateLimiter
from backend.auth.service import open_session
from backend.auth.sessions import PUBLIC, SignedIn, session_response, signed_in_id
from backend.chains.schemas import (
    ChallengeRequest,
    ChallengeView,
    WalletProofBody,
    WalletView,
    challenge_view,
)
from backend.chains.service import Wallets
from backend.db.uow import UnitOfWork
from backend.errors import Unauthorized
from backend.inputs import Id32
from backend.openapi import errors
from backend.users.models import User
from backend.users.schemas import UserProfile

# A proof is a few kilobytes at most (a stateInit, a SIWE message); larger bodies get a 413.
MAX_BODY_BYTES = 32 * 1024


class WalletsController(Controller):
    path = "/api/wallets"
    tags = ["wallets"]

    @post(
        "/challenge",
        opt={**PUBLIC, RATE_LIMIT_OPT: "signin"},
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def challenge(
        self,
        data: JSONBody[ChallengeRequest],
        uow: NamedDependency[UnitOfWork],
        wallets: NamedDependency[Wallets],
    ) -> ChallengeView:
        """A single-use payload (ton_proof) or nonce (SIWE) to sign, valid for a few minutes."""
        row = await wallets.challenge(uow, data.kind)
        return challenge_view(
            row,
            domain=wallets.domain,
            uri=wallets.origin,
            chain_ids=sorted(wallets.chain_ids),
        )

    @post(
        "/link",
        request_max_body_size=MAX_BODY_BYTES,
        responses={
            200: ResponseSpec(WalletView, description="Linked to you before"),
            **errors(401, 409),
        },
    )
    async def link(
        self,
        request: SignedIn,
        data: JSONBody[WalletProofBody],
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
        wallets: NamedDependency[Wallets],
    ) -> Response[WalletView]:
        """Link the wallet the proof speaks for: 201 new, 200 linked before; 409
        ``wallet_taken`` when another account has it; 503 ``siwe_unverifiable`` when a contract
        wallet's chain node does not answer (EIP-1271).  The first link pays the wallet award."""
        linked = await wallets.link(uow, audit, signed_in_id(request), data.to_proof())
        status = 201 if linked.created else 200
        return Response(WalletView.of(linked.wallet), status_code=status)

    @get()
    async def mine(
        self, request: SignedIn, uow: NamedDependency[UnitOfWork], wallets: NamedDependency[Wallets]
    ) -> list[WalletView]:
        """My linked wallets, oldest first."""
        found = await wallets.wallets(uow.session, signed_in_id(request))
        return [WalletView.of(wallet) for wallet in found]

    @delete("/{wallet_id:int}", responses=errors(404))
    async def unlink(
        self,
        request: SignedIn,
        wallet_id: Id32,
        uow: NamedDependency[UnitOfWork],
        audit: NamedDependency[AuditContext],
        wallets: NamedDependency[Wallets],
    ) -> None:
        """Unlink one of my wallets (audited as ``wallet.unlink``)."""
        await wallets.unlink(uow, audit, signed_in_id(request), wallet_id)


class WalletAuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]
    opt = PUBLIC

    @post(
        "/wallet",
        opt={RATE_LIMIT_OPT: "signin"},
        request_max_body_size=MAX_BODY_BYTES,
        status_code=200,
        responses=errors(401),
    )
    async def wallet(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[WalletProofBody],
        uow: NamedDependency[UnitOfWork],
        wallets: NamedDependency[Wallets],
        limiter: NamedDependency[RateLimiter],
        auth: NamedDependency[SkipValidation[JWTCookieAuth[User, Token]]],
    ) -> Response[dict[str, Any]]:
        """Sign in with a linked wallet (the same body as linking): the same session as
        Telegram sign-in gives, JWT in the body and an HttpOnly cookie.  503
        ``siwe_unverifiable`` as for linking."""
        # Only JSON: a cross-site form cannot send it, so no page can sign a visitor in.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Unauthorized("sign-in body must be application/json", code="bad_body")
        user = await wallets.sign_in(uow, data.to_proof())
        assert user.id is not None
        # The same per-account limit as Telegram sign-in, whichever way the account signs in.
        await limiter.hit("signin_user", str(user.telegram_id))
        session = await open_session(uow.session, user.id, auth.default_token_expiration)
        body = {"user": msgspec.to_builtins(UserProfile.of(user)), "created": False}
        return session_response(auth, session, body, status_code=200)
