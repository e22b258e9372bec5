"""The JSON protocol of ``/ws`` (pure): client operations in, frames out.

Client → server::

    {"op": "subscribe", "topics": ["prices", "book:TON-USDT"], "since": {"prices": 41}}
    {"op": "subscribe", "topics": ["prices"], "html": ["prices"]}   # and its fragment (htmx)
    {"op": "unsubscribe", "topics": ["prices"]}
    {"op": "ping"}
    {"op": "auth", "token": "<jwt>"}    # sign the socket in (tokens never go in the URL)

Server → client::

    {"op": "subscribed", "topic": "prices", "seq": 42, "recovered": true}
    {"topic": "prices", "seq": 43, "type": "delta", "data": {...}}
    {"op": "html", "topic": "prices", "seq": 43, "html": "<div id=\"ticker\" ...>"}
    {"op": "pong"}
    {"op": "authed", "user_id": 7}
    {"op": "error", "code": "forbidden", "message": "..."}
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# Subscribing to more than this in one connection is not a client, it is a scraper.
MAX_TOPICS_PER_CONNECTION = 64
Kind = Literal["snapshot", "delta", "event"]
# Close codes (RFC 6455) the hub uses; its own 4xxx codes live with their causes.
NORMAL_CLOSURE = 1000
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011


class Subscribe(msgspec.Struct, tag_field="op", tag="subscribe", forbid_unknown_fields=True):
    topics: list[str]
    since: dict[str, int] = {}
    epoch: str | None = None
    """The epoch of the ``subscribed`` answers ``since`` refers to; another one cannot resume."""
    html: list[str] = []
    """Topics whose frames should each be followed by their rendered fragment (``op: html``),
    so the page's htmx ticker rides this socket instead of a second one (``/ws/html``)."""


class Unsubscribe(msgspec.Struct, tag_field="op", tag="unsubscribe", forbid_unknown_fields=True):
    topics: list[str]


class Ping(msgspec.Struct, tag_field="op", tag="ping", forbid_unknown_fields=True):
    pass


class Auth(msgspec.Struct, tag_field="op", tag="auth", forbid_unknown_fields=True):
    token: str


Operation = Subscribe | Unsubscribe | Ping | Auth
_decoder = msgspec.json.Decoder(Operation)
_encoder = msgspec.json.Encoder()


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode_operation(raw: str | bytes) -> Operation:
    try:
        operation: Operation = _decoder.decode(raw)
        return operation
    except msgspec.ValidationError as exc:
        raise ProtocolError("bad_op", str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_json", "frames must be JSON objects") from exc


def encode_frame(topic: str, seq: int, kind: Kind, data: Any) -> bytes:
    """A message frame, encoded once and sent as is to every subscriber."""
    return _encoder.encode({"topic": topic, "seq": seq, "type": kind, "data": data})


def frame_parts(topic: str, kind: Kind, data: Any) -> tuple[bytes, bytes]:
    """The frame around its sequence number, for backends that assign it atomically."""
    head = _encoder.encode({"topic": topic})[:-1] + b',"seq":'
    tail = b',"type":' + _encoder.encode(kind) + b',"data":' + _encoder.encode(data) + b"}"
    return head, tail


def subscribed(topic: str, seq: int, recovered: bool, epoch: str) -> bytes:
    return _encoder.encode(
        {"op": "subscribed", "topic": topic, "seq": seq, "recovered": recovered, "epoch": epoch}
    )


def html(topic: str, seq: int, fragment: str) -> bytes:
    return _encoder.encode({"op": "html", "topic": topic, "seq": seq, "html": fragment})


def authed(user_id: int) -> bytes:
    return _encoder.encode({"op": "authed", "user_id": user_id})


def error(code: str, message: str) -> bytes:
    return _encoder.encode({"op": "error", "code": code, "message": message})


PONG = _encoder.encode({"op": "pong"})
