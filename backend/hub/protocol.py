"""The JSON protocol of ``/ws`` (pure): client operations in, frames out.

Client → server::

    {"op": "subscribe", "topics": ["prices", "book:TON-USDT"], "since": {"prices": 41}}
    {"op": "unsubscribe", "topics": ["prices"]}
    {"op": "ping"}

Server → client::

    {"op": "subscribed", "topic": "prices", "seq": 42, "recovered": true}
    {"topic": "prices", "seq": 43, "type": "delta", "data": {...}}
    {"op": "pong"}
    {"op": "error", "code": "forbidden", "message": "..."}
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# Subscribing to more than this in one connection is not a client, it is a scraper.
MAX_TOPICS_PER_CONNECTION = 64
Kind = Literal["snapshot", "delta", "event"]


class Subscribe(msgspec.Struct, tag_field="op", tag="subscribe", forbid_unknown_fields=True):
    topics: list[str]
    since: dict[str, int] = {}
    epoch: str | None = None
    """The epoch of the ``subscribed`` answers ``since`` refers to; another one cannot resume."""


class Unsubscribe(msgspec.Struct, tag_field="op", tag="unsubscribe", forbid_unknown_fields=True):
    topics: list[str]


class Ping(msgspec.Struct, tag_field="op", tag="ping", forbid_unknown_fields=True):
    pass


Operation = Subscribe | Unsubscribe | Ping
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


def error(code: str, message: str) -> bytes:
    return _encoder.encode({"op": "error", "code": code, "message": message})


PONG = _encoder.encode({"op": "pong"})
