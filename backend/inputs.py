"""What every route's input must be before a handler sees it: numbers the database can store,
text PostgreSQL accepts, JSON bodies of exactly the declared types.

One ``before_request`` hook (``check_request``) holds the rules for URLs and JSON bodies, so no
controller repeats them; routes that read a body themselves (sign-in) call ``refuse_nul``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, SerializationException, ValidationException
from litestar.params import Parameter

from backend.errors import BadRequest, NulCharacter

# The columns' ranges.  PostgreSQL's INTEGER holds 32 bits and BIGINT 64; a larger number
# makes the driver raise (and SQLite's overflow), so such a number is refused at the edge: no
# row could carry it anyway.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Id32 = Annotated[int, Parameter(ge=1, le=INT32_MAX)]
"""An id from an INTEGER primary key (users, audit entries)."""
Id64 = Annotated[int, Parameter(ge=1, le=INT64_MAX)]
"""An id from a BIGINT primary key (orders, trades, alerts)."""

NUL = "\x00"
# No body of ours nests more than a few levels.  The limit is checked on the raw bytes, not left
# to the decoder's recursion guard: that follows the interpreter's recursion limit, which a
# library may raise (py_ecc, under eth-account, sets it to 100,000 at import).
MAX_JSON_DEPTH = 64
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class TooDeep(BadRequest):
    code = "too_deep"


def too_deep(raw: bytes) -> bool:
    """Whether the JSON text opens more than MAX_JSON_DEPTH arrays or objects at once (brackets
    inside strings do not count).  Bodies with few brackets, nearly all, are not scanned."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for match in _STRUCTURE.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def has_nul(value: Any) -> bool:
    """Whether any string in a decoded JSON value (keys included) holds a NUL.  Iterative:
    a deeply nested value must not exhaust the stack here either."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def refuse_nul(where: str, value: Any) -> None:
    if has_nul(value):
        raise NulCharacter(where)


async def check_request(request: Request[Any, Any, Any]) -> None:
    """The app's ``before_request`` hook: it runs after authentication and guards, before the
    handler's arguments are parsed."""
    refuse_nul("url", request.scope["path"])
    refuse_nul("query", list(request.query_params.multi_items()))
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    media_type = getattr(field.kwarg_definition, "media_type", RequestEncodingType.JSON)
    if media_type != RequestEncodingType.JSON:
        return
    if too_deep(await request.body()):
        raise TooDeep(f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        body = await request.json()
    except RecursionError:
        raise TooDeep("the JSON body is nested too deeply") from None
    except SerializationException as exc:
        raise ClientException(str(exc)) from None
    refuse_nul("body", body)
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        _check_strict(request, annotation, body)


def _check_strict(request: Request[Any, Any, Any], struct: type[msgspec.Struct], body: Any) -> None:
    """Litestar converts bodies leniently (``"5"`` and ``1e3`` pass as integers); amounts of
    money and points must be exactly what the schema says, so the body is checked strictly."""
    try:
        msgspec.convert(body, struct, strict=True, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        error: dict[str, Any] = {"message": message, "source": "body"}
        if where:
            error["key"] = where.strip("`").lstrip(".")
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}", extra=[error]
        ) from None
