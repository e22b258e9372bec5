"""WebSocket framing of the hub's messages (pure): each frame is built once per process."""

from __future__ import annotations


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame, as a server sends it (RFC 6455, section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload
