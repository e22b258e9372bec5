"""Who a WebSocket speaks for, at the handshake (connection.py re-checks it while open).

* At connect: an ``Authorization: Bearer`` header (non-browser clients), else the session
  cookie, but only when the handshake's Origin is our own (or absent: not a browser).  A
  cookie from a foreign Origin is ignored, so another site's page gets an anonymous socket
  and no private topic.  A malformed header or a dead bearer token closes with 4001.
* In band: ``{"op": "auth", "token": "<jwt>"}``, for pages that cannot use the cookie; the
  answer is ``{"op": "authed", "user_id": N}`` or an ``unauthorized`` error frame.
* While open (connection.py): every signed-in socket's session is re-checked every
  AUTH_SOCKET_RECHECK_SECONDS, in one query per process; once it is revoked or expired the
  socket loses its private topics (an error frame ``session_ended`` says so) and stays open
  for the public ones.
* Per client address a process holds at most HUB_MAX_SOCKETS_PER_ADDRESS sockets; the next
  is accepted and closed at once with 4029.

Tokens never travel in the URL: URLs end up in access logs.
"""

from __future__ import annotations

from typing import Any

from litestar import WebSocket

from backend.auth.sessions import SessionIdentity, authenticate, credential
from backend.errors import Unauthorized
from backend.hub.connection import SocketRegistry

# Close codes of /ws (documented in the README, next to 4008 "slow consumer").
UNAUTHORIZED = 4001
TOO_MANY_SOCKETS = 4029


class BadCredential(Exception):
    pass


def own_origin(socket: WebSocket[Any, Any, Any], base_url: str) -> bool:
    """Browsers send Origin on every WebSocket handshake; a client without one is no page."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True
    own = {str(socket.base_url).rstrip("/"), base_url}
    # The handshake's base URL says ws:// where the page said http://.
    own |= {url.replace("ws://", "http://").replace("wss://", "https://") for url in own}
    return origin.rstrip("/") in own


async def connect_session(
    socket: WebSocket[Any, Any, Any], registry: SocketRegistry
) -> SessionIdentity | None:
    """The session the handshake carries, None for anonymous; BadCredential for a header that
    is malformed or names no live session (a stale cookie only makes the socket anonymous)."""
    try:
        found = credential(socket)
    except Unauthorized as exc:
        raise BadCredential(exc.message) from exc
    if found is None:
        return None
    if found.kind == "cookie" and not own_origin(socket, registry.base_url):
        return None
    identity = await authenticate(registry.db, registry.auth, found.token)
    if identity is None and found.kind == "bearer":
        raise BadCredential("the token names no live session")
    return identity
