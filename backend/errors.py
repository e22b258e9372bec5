"""Domain errors, and the one place that turns them (and Litestar's) into HTTP responses."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = structlog.get_logger(__name__)


class DomainError(Exception):
    """A refusal the user can understand; ``code`` is stable and machine-readable."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(DomainError):
    """The request itself is malformed."""


class NulCharacter(BadRequest):
    """PostgreSQL cannot store U+0000 in text; SQLite can, so both refuse it alike."""

    code = "nul_character"

    def __init__(self, where: str) -> None:
        super().__init__(f"{where}: text may not contain the NUL character (U+0000)")


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def error_body(status_code: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"status_code": status_code, "error": code, "detail": detail, **extra}


def domain_error_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        error_body(exc.status_code, exc.code, exc.message),
        status_code=exc.status_code,
        headers=headers,
        media_type=MediaType.JSON,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "rate_limited",
}


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra = {"extra": exc.extra} if exc.extra else {}
    return Response(
        error_body(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), exc.detail, **extra),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled_error", path=request.url.path, exc_info=exc)
    return Response(
        error_body(HTTP_500_INTERNAL_SERVER_ERROR, "internal", "internal server error"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


# PostgreSQL's codes for a transaction that lost a race (deadlock, serialization failure):
# nothing was written, and the same request will very likely pass when sent again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
# Text PostgreSQL will not store (a NUL).  The edge refuses it first (backend/inputs.py); this
# catches whatever reaches the database another way.
BAD_TEXT_SQLSTATES = frozenset({"22021"})


def _unavailable(code: str, detail: str) -> Response[Any]:
    return Response(
        error_body(HTTP_503_SERVICE_UNAVAILABLE, code, detail),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
        media_type=MediaType.JSON,
    )


def database_error_handler(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        log.warning("transaction_lost_race", path=request.url.path, sqlstate=sqlstate)
        return _unavailable("retry", "busy, nothing was changed: try again")
    if exc.connection_invalidated or isinstance(exc, InterfaceError | OperationalError):
        # A connection the server closed (restart, failover, idle kill): SQLAlchemy has
        # dropped it and the pool reconnects, so the same request passes when sent again.
        log.warning("database_unavailable", path=request.url.path, error=str(exc.orig))
        return _unavailable("db_unavailable", "the database is unavailable: try again shortly")
    if sqlstate in BAD_TEXT_SQLSTATES:
        return domain_error_handler(request, NulCharacter("text"))
    return internal_error_handler(request, exc)


def connection_error_handler(
    request: Request[Any, Any, Any], exc: ConnectionError
) -> Response[Any]:
    """The database refused or dropped a new connection (asyncpg raises OSError's kind)."""
    log.warning("connection_failed", path=request.url.path, error=str(exc))
    return _unavailable("db_unavailable", "the database is unavailable: try again shortly")


exception_handlers: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    DBAPIError: database_error_handler,
    ConnectionError: connection_error_handler,
    Exception: internal_error_handler,
}
