"""The one place failures become HTTP answers: domain errors by the table of statuses below,
Litestar's own by theirs, the database's as 503 "try again", anything else as a 500.  Every
answer has the same body, ``{"status_code", "error", "detail"}``."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from backend.chains.siwe import SiweUnverifiable
from backend.chains.withdrawals import ChainUnreachable
from backend.errors import (
    RETRYABLE_SQLSTATES,
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    NulCharacter,
    RateLimited,
    Unauthorized,
)
from backend.trading.commands import (
    BookRefused,
    InsufficientFunds,
    OrderRejected,
    WriterUnavailable,
)

log = structlog.get_logger(__name__)

STATUSES: dict[type[DomainError], int] = {
    DomainError: 400,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    OrderRejected: 400,
    # Well-formed orders that the book or the balance, as they stand, cannot take.
    BookRefused: 409,
    InsufficientFunds: 409,
    # The order books cannot answer now; the same request (client order id) may be sent again.
    WriterUnavailable: 503,
    # A contract wallet's chain node did not answer; the same proof may be sent again.
    SiweUnverifiable: 503,
    # The chain's node did not answer a withdrawal's question; ask again.
    ChainUnreachable: 503,
}
"""A domain error's HTTP status: its class's, else its nearest base class's."""


def status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        status = STATUSES.get(cls)
        if status is not None:
            return status
    raise AssertionError("DomainError itself has a status")  # pragma: no cover


def error_body(status_code: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"status_code": status_code, "error": code, "detail": detail, **extra}


def domain_error_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status = status_of(exc)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        error_body(status, exc.code, exc.message),
        status_code=status,
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
