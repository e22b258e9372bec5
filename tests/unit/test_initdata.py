"""initData validation vectors, on the pure function (no server)."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.auth.initdata import (
    MAX_INIT_DATA_BYTES,
    InitDataError,
    TelegramKeys,
    validate_init_data,
)
from backend.testing.telegram import (
    BOT_ID,
    BOT_TOKEN,
    TEST_PUBLIC_KEY_HEX,
    base_fields,
    hmac_hash,
    hmac_only_init_data,
    signature_only_init_data,
    signed_init_data,
)

KEYS = TelegramKeys(
    bot_token=BOT_TOKEN, bot_id=BOT_ID, public_key=bytes.fromhex(TEST_PUBLIC_KEY_HEX)
)
SIGNATURE_ONLY_KEYS = TelegramKeys(bot_id=BOT_ID, public_key=bytes.fromhex(TEST_PUBLIC_KEY_HEX))
HOUR = timedelta(hours=1)


def rejected(raw: str, keys: TelegramKeys = KEYS) -> str:
    with pytest.raises(InitDataError) as caught:
        validate_init_data(raw, keys, max_age=HOUR)
    return caught.value.code


def test_valid_hmac_init_data_yields_the_user() -> None:
    data = validate_init_data(hmac_only_init_data(base_fields(42)), KEYS, max_age=HOUR)
    assert data.user is not None
    assert (data.user.id, data.user.first_name, data.user.is_premium) == (42, "Ada", True)


def test_valid_ed25519_signature_without_bot_token() -> None:
    raw = signature_only_init_data(base_fields(43))
    data = validate_init_data(raw, SIGNATURE_ONLY_KEYS, max_age=HOUR)
    assert data.user is not None and data.user.id == 43


def test_telegram_style_init_data_with_both_fields_verifies_either_way() -> None:
    raw = signed_init_data(base_fields(44, start_param="ref_abcd2345"))
    assert validate_init_data(raw, KEYS, max_age=HOUR).start_param == "ref_abcd2345"
    assert validate_init_data(raw, SIGNATURE_ONLY_KEYS, max_age=HOUR).start_param == "ref_abcd2345"


def test_tampered_field_is_refused() -> None:
    raw = signed_init_data(base_fields(45)).replace("Ada", "Eve")
    assert rejected(raw) == "bad_signature"


def test_wrong_bot_token_is_refused() -> None:
    raw = hmac_only_init_data(
        base_fields(46), bot_token=f"{BOT_ID}:AAEsomeoneElsesTokenXXXXXXXXXXXXXXXX"
    )
    assert rejected(raw) == "bad_signature"


def test_signature_from_another_key_is_refused() -> None:
    raw = signature_only_init_data(base_fields(47), key=Ed25519PrivateKey.generate())
    assert rejected(raw, SIGNATURE_ONLY_KEYS) == "bad_signature"


def test_garbage_signature_is_refused_not_crashed() -> None:
    assert (
        rejected(urlencode({**base_fields(48), "signature": "!!not-base64!!"})) == "bad_signature"
    )
    assert rejected(urlencode({**base_fields(48), "signature": "AAAA"})) == "bad_signature"


def test_expired_init_data_is_refused() -> None:
    stale = int(time.time()) - 3601
    assert rejected(hmac_only_init_data(base_fields(49, auth_date=stale))) == "expired"


def test_future_auth_date_is_refused() -> None:
    future = int(time.time()) + 3600
    assert rejected(hmac_only_init_data(base_fields(50, auth_date=future))) == "expired"


def test_missing_hash_is_refused() -> None:
    assert rejected(urlencode(base_fields(51))) == "missing_hash"


def test_duplicated_keys_are_refused_even_when_signed() -> None:
    fields = base_fields(52)
    raw = hmac_only_init_data(fields) + "&user=" + quote('{"id":1,"first_name":"Mallory"}')
    assert rejected(raw) == "duplicate_key"


def test_non_utf8_and_malformed_input_is_refused() -> None:
    raw = hmac_only_init_data(base_fields(53)) + "&bad=%FF%FE"
    assert rejected(raw) == "malformed"
    assert rejected("no-equals-sign") == "malformed"


def test_oversized_init_data_is_refused() -> None:
    fields = base_fields(54, padding="x" * MAX_INIT_DATA_BYTES)
    assert rejected(hmac_only_init_data(fields)) == "too_large"


def test_no_user_is_refused() -> None:
    fields = {"auth_date": str(int(time.time())), "query_id": "q"}
    raw = urlencode({**fields, "hash": hmac_hash(fields)})
    assert rejected(raw) == "missing_user"


def test_nothing_verifies_without_keys() -> None:
    assert rejected(signed_init_data(base_fields(55)), TelegramKeys()) == "bad_signature"


@pytest.mark.parametrize("telegram_id", [0, -1, -(2**52), 2**53, 2**63, 2**70])
def test_user_ids_telegram_never_issues_are_refused(telegram_id: int) -> None:
    assert rejected(signed_init_data(base_fields(telegram_id))) == "bad_user_id"


def test_the_largest_telegram_id_is_accepted() -> None:
    data = validate_init_data(signed_init_data(base_fields(2**53 - 1)), KEYS, max_age=HOUR)
    assert data.user is not None and data.user.id == 2**53 - 1
