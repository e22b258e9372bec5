"""Cross-site request forgery: cookie-authenticated writes must come from our own pages.

The session cookie is SameSite=Lax, which already keeps it off cross-site POSTs; this guard is
the second lock (sibling subdomains count as "same site" for SameSite, not for Origin).  The
guard looks at the credential the request actually authenticates with (sessions.credential):
a ``Bearer`` header is not forgeable, browsers never add it on their own; any other
Authorization header is refused there and then, so it cannot wave a cookie through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler

from backend.auth.sessions import credential
from backend.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# "none" is a navigation the user made themselves (typed URL, bookmark).
_TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


@dataclass(frozen=True, slots=True)
class SameOriginGuard:
    """App-wide: a cookie-authenticated write must come from ``base_url`` or the request's own."""

    base_url: str

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        scope = connection.scope
        if scope["type"] != ScopeType.HTTP or scope["method"] in SAFE_METHODS:
            return
        used = credential(connection)
        if used is None or used.kind == "bearer":
            return
        headers = connection.headers
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None:
            if fetch_site in _TRUSTED_FETCH_SITES:
                return
            raise Forbidden("cross-site request refused", code="cross_site")
        origin = headers.get("origin")
        if origin is None:
            return  # not a browser: browsers send Origin (or Sec-Fetch-Site) on every POST
        own = {str(connection.base_url).rstrip("/"), self.base_url}
        if origin.rstrip("/") not in own:
            raise Forbidden("cross-site request refused", code="cross_site")
