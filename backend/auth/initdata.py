"""Validation of Telegram Mini App ``initData`` (pure: no I/O, no framework).

Two schemes are accepted, as Telegram documents them:

* ``hash``: HMAC-SHA256 keyed by HMAC_SHA256("WebAppData", bot_token), for the bot's own server;
* ``signature``: Ed25519 by Telegram over "<bot_id>:WebAppData\\n<fields>", for third parties
  that know only the bot id and Telegram's public key.

The cryptographic checks are aiogram's; this module adds the strict parsing around them
(duplicate keys, encoding, size, freshness) so that nothing ambiguous reaches them.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from aiogram.utils import web_app, web_app_signature
from aiogram.utils.web_app import WebAppInitData
from pydantic import ValidationError

# Real initData is well under 1 KB; 4 KB leaves room for long names and photo URLs.
MAX_INIT_DATA_BYTES = 4096
# A SHA-256 hex digest; anything else (non-ASCII included) is refused before comparing.
_HASH = re.compile(r"[0-9a-f]{64}")
_JSON_FIELDS = frozenset({"user", "receiver", "chat"})
# A client clock a little ahead of ours is normal; a date far in the future is forged or broken.
CLOCK_SKEW = timedelta(seconds=60)
# Telegram documents user ids as at most 52 significant bits, and they are positive: 0 and
# negatives are nobody (negatives are our demo users' range), 2**63 would not fit the column.
MAX_TELEGRAM_ID = 2**53 - 1


class InitDataError(ValueError):
    """initData that must not sign anybody in; ``code`` is stable for clients and tests."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TelegramKeys:
    """What the server knows to check initData with; either part may be absent."""

    bot_token: str = ""
    bot_id: int | None = None
    public_key: bytes = b""


def validate_init_data(
    raw: str, keys: TelegramKeys, *, max_age: timedelta, now: datetime | None = None
) -> WebAppInitData:
    """Return the parsed initData if it is authentic and fresh, else raise InitDataError."""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_INIT_DATA_BYTES:
        raise InitDataError("too_large", f"initData is over {MAX_INIT_DATA_BYTES} bytes")
    fields = _parse_strict(raw)

    if "hash" not in fields and "signature" not in fields:
        raise InitDataError("missing_hash", "initData carries neither hash nor signature")
    if not _authentic(raw, fields, keys):
        raise InitDataError("bad_signature", "initData signature does not verify")

    try:
        data = _to_model(fields)
    except (ValidationError, ValueError) as exc:
        raise InitDataError("malformed", "initData fields are not valid") from exc
    if data.user is None:
        raise InitDataError("missing_user", "initData has no user")
    if not 1 <= data.user.id <= MAX_TELEGRAM_ID:
        raise InitDataError("bad_user_id", "initData names a user id Telegram never issues")

    now = now or datetime.now(UTC)
    auth_date = data.auth_date if data.auth_date.tzinfo else data.auth_date.replace(tzinfo=UTC)
    if auth_date > now + CLOCK_SKEW:
        raise InitDataError("expired", "initData auth_date is in the future")
    if now - auth_date > max_age:
        raise InitDataError("expired", "initData is too old; reopen the mini-app")
    return data


def _parse_strict(raw: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InitDataError("malformed", "initData is not a valid query string") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            # A repeated key could make the signed and the used value differ.
            raise InitDataError("duplicate_key", f"initData repeats the field {key!r}")
        fields[key] = value
    return fields


def _to_model(fields: dict[str, str]) -> WebAppInitData:
    values: dict[str, object] = dict(fields)
    for key in _JSON_FIELDS & fields.keys():
        values[key] = json.loads(fields[key])
    # Third-party launches may be checked by signature alone; the model still wants a hash.
    values.setdefault("hash", "")
    return WebAppInitData.model_validate(values)


def _authentic(raw: str, fields: dict[str, str], keys: TelegramKeys) -> bool:
    hash_ok = _HASH.fullmatch(fields.get("hash", "")) is not None
    if keys.bot_token and hash_ok and web_app.check_webapp_signature(keys.bot_token, raw):
        return True
    if keys.bot_id is not None and keys.public_key and "signature" in fields:
        try:
            return web_app_signature.check_webapp_signature(keys.bot_id, raw, keys.public_key)
        except (binascii.Error, ValueError, TypeError):
            return False
    return False
