"""Builds initData the way Telegram does, for tests and benchmarks: the HMAC `hash` and the
Ed25519 `signature`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BOT_ID = 123456789
BOT_TOKEN = f"{BOT_ID}:AAEtestTokenForSimplRefQTests0123456789"
# A key pair of our own stands in for Telegram's: the server is configured with its public half.
TEST_SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"simplrefq-tests").digest())
TEST_PUBLIC_KEY_HEX = TEST_SIGNING_KEY.public_key().public_bytes_raw().hex()


def user_fields(telegram_id: int = 777000, **overrides: Any) -> dict[str, Any]:
    user = {
        "id": telegram_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "username": f"ada{telegram_id}",
        "language_code": "en",
        "is_premium": True,
        "allows_write_to_pm": True,
        "photo_url": "https://t.me/i/userpic/320/ada.svg",
    }
    user.update(overrides)
    return user


def base_fields(
    telegram_id: int = 777000, *, auth_date: int | None = None, **extra: str
) -> dict[str, str]:
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user_fields(telegram_id), separators=(",", ":")),
        "auth_date": str(auth_date if auth_date is not None else int(time.time())),
    }
    fields.update(extra)
    return fields


def _check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))


def hmac_hash(fields: dict[str, str], bot_token: str = BOT_TOKEN) -> str:
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, _check_string(fields).encode(), hashlib.sha256).hexdigest()


def ed25519_signature(
    fields: dict[str, str], bot_id: int = BOT_ID, key: Ed25519PrivateKey = TEST_SIGNING_KEY
) -> str:
    message = f"{bot_id}:WebAppData\n{_check_string(fields)}".encode()
    return base64.urlsafe_b64encode(key.sign(message)).decode().rstrip("=")


def signed_init_data(fields: dict[str, str], bot_token: str = BOT_TOKEN) -> str:
    """initData with both a signature and (over it, as Telegram does) an HMAC hash."""
    with_signature = {**fields, "signature": ed25519_signature(fields)}
    return urlencode({**with_signature, "hash": hmac_hash(with_signature, bot_token)})


def hmac_only_init_data(fields: dict[str, str], bot_token: str = BOT_TOKEN) -> str:
    return urlencode({**fields, "hash": hmac_hash(fields, bot_token)})


def signature_only_init_data(
    fields: dict[str, str], key: Ed25519PrivateKey = TEST_SIGNING_KEY
) -> str:
    return urlencode({**fields, "signature": ed25519_signature(fields, key=key)})
