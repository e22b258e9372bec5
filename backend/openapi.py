"""The OpenAPI document, made true: every error a route can answer, and no auth on public routes.

Errors every route shares follow from how the route is built (a session, a role guard, a write,
a body), so ``document_errors`` adds them at app build, once; a route lists only the refusals
of its own domain (``responses=errors(404, 409)``).  tests/test_contract.py holds the
document to what the server answers.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute

from backend.auth.csrf import SameOriginGuard
from backend.auth.ratelimit import RATE_LIMIT_OPT, WRITE_METHODS, RateLimitGuard


class ErrorBody(msgspec.Struct):
    """Every error answer (backend/http.py ``error_body``)."""

    status_code: int
    error: str
    """Stable and machine-readable: branch on this, not on ``detail``."""
    detail: str
    extra: Any = None


ERROR_SCHEMA = "ErrorBody"
# Why each status is answered; a route's own refusals say more in their ``error`` code.
REASONS = {
    400: "Bad input: validation, a NUL character, a body nested too deeply (`error` says which)",
    401: "No valid session, or a sign-in that failed",
    403: "Not allowed: a role is required, a cross-site write, or a refusal of this route",
    404: "Not found",
    409: "Conflict with the current state (e.g. `order_closed`, `insufficient_funds`)",
    413: "The request body is too large",
    429: "Too many requests: see Retry-After",
    503: "Try again: the database, the order books or a chain node did not answer, or a "
    "transaction lost a race (Retry-After)",
}
APP_GUARDS = (SameOriginGuard, RateLimitGuard)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """A route's own refusals, for its decorator's ``responses``."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=REASONS[status])
        for status in statuses
    }


def document_errors(app: Litestar) -> None:
    """Complete the generated document in place (it is built once and cached)."""
    openapi = app.openapi_schema
    assert openapi.components is not None and openapi.paths is not None
    schemas = openapi.components.schemas = dict(openapi.components.schemas or {})
    schemas[ERROR_SCHEMA] = _error_schema()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in openapi.paths:
            continue
        item: PathItem = openapi.paths[route.path_format]
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            opt = handler.opt
            public = bool(opt.get("exclude_from_auth"))
            # Litestar wraps sync guards; the app's own two apply to every route.
            guards = {getattr(guard, "func", guard) for guard in handler.resolve_guards()}
            role_guarded = any(not isinstance(guard, APP_GUARDS) for guard in guards)
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                writes = method in WRITE_METHODS
                statuses = {400, 503}
                if not public or opt.get(RATE_LIMIT_OPT) == "signin":
                    statuses.add(401)
                if role_guarded or writes:
                    statuses.add(403)
                limit = opt.get(RATE_LIMIT_OPT)
                if limit == "signin" or (writes and limit != "none"):
                    statuses.add(429)
                if writes:
                    statuses.add(413)
                if "{" in route.path_format:
                    # Also what the router answers for a path parameter of the wrong type.
                    statuses.add(404)
                responses = operation.responses = dict(operation.responses or {})
                # A route's own (``errors()``) and Litestar's 400 get the one error body too.
                statuses |= {int(code) for code in responses if int(code) >= 400}
                for status in sorted(statuses):
                    responses[str(status)] = _error_response(status)
                no_content = responses.get("204")
                if isinstance(no_content, OpenAPIResponse):
                    # Litestar describes a ``Response[None]`` as a JSON null; a 204 has no body.
                    no_content.content = None
                if public:
                    operation.security = []


def _error_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=REASONS[status],
        content={
            "application/json": OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}")
            )
        },
    )


def _error_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["status_code", "error", "detail"],
        properties={
            "status_code": Schema(type=OpenAPIType.INTEGER),
            "error": Schema(type=OpenAPIType.STRING, description="stable, machine-readable"),
            "detail": Schema(type=OpenAPIType.STRING),
            "extra": Schema(description="details, e.g. the fields that failed validation"),
        },
    )
