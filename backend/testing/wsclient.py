"""A lean WebSocket client for the load generators: an asyncio protocol that parses frames in
bulk, so that thousands of clients on the same two cores as the server measure the server.

It speaks just what the benchmark needs of RFC 6455: the opening handshake, masked text
frames out, unmasked text frames in, ping answered with pong, close.  Each text message goes
to ``on_text``; nothing else is kept per client but the unparsed tail of the stream.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import cast

_HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask, RFC 6455 section 5.3)."""
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    body = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return header + key + body


class LeanClient(asyncio.Protocol):
    def __init__(self, host: str, path: str, on_text: Callable[[bytes], None]) -> None:
        self._request = _HANDSHAKE.format(
            path=path, host=host, key=base64.b64encode(os.urandom(16)).decode()
        ).encode()
        self._on_text = on_text
        self._buffer = b""
        self._upgraded = False
        self._transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.close_reason = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport.write(self._request)

    def send_text(self, text: str) -> None:
        if self._transport is not None:
            self._transport.write(masked(_TEXT, text.encode()))

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            status = buffer[: buffer.find(b"\r\n")]
            if b" 101 " not in status:
                self._fail(ConnectionError(status.decode(errors="replace")))
                return
            self._upgraded = True
            self.opened.set_result(None)
            buffer = buffer[end + 4 :]
        offset, size = 0, len(buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1] & 0x7F
            start = offset + 2
            if second == 126:
                if size - start < 2:
                    break
                second = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif second == 127:
                if size - start < 8:
                    break
                second = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            end = start + second
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == _TEXT:
                self._on_text(buffer[start:end])
            elif opcode == _PING:
                assert self._transport is not None
                self._transport.write(masked(_PONG, buffer[start:end]))
            elif opcode == _CLOSE:
                payload = buffer[start:end]
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                self.close_reason = payload[2:].decode(errors="replace")
                assert self._transport is not None
                self._transport.write(masked(_CLOSE, payload[:2]))
                self._transport.close()
                self._buffer = b""
                return
            offset = end
        self._buffer = buffer[offset:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("closed"))

    def _fail(self, exc: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if not self.closed.done():
            self.closed.set_result(None)
        if self._transport is not None:
            self._transport.close()
