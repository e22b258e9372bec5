"""The wallet's notification texts: each kind in every language, every payload value escaped."""

from __future__ import annotations

from typing import Any

import pytest

from backend.i18n import languages, translator
from backend.notify.messages import KINDS, TOPICS, render, topic_label

ADDRESS = "0x1234567890aBcDeF1234567890abcdef1234abcd"
TX = "0x" + "ab" * 32
PAYLOADS: dict[str, dict[str, Any]] = {
    "deposit_credited": {"chain": "bnb", "asset": "USDT", "amount": "25.5", "tx_hash": TX},
    "withdrawal_sent": {
        "chain": "ethereum",
        "asset": "ETH",
        "amount": "0.25",
        "address": ADDRESS,
        "tx_hash": TX,
    },
    "withdrawal_returned": {
        "chain": "bnb",
        "asset": "USDT",
        "amount": "10",
        "reason": "expired",
    },
}
HOSTILE = "<i>&x</i>"
# In the payload for the Wallet tab's sake, not in the text: the tab links the transaction,
# and the balance a withdrawal returns to is the same on every chain.
HIDDEN = {
    "deposit_credited": {"tx_hash"},
    "withdrawal_sent": {"tx_hash"},
    "withdrawal_returned": {"chain"},
}


def test_the_wallet_kinds_share_one_topic_that_opens_the_wallet_tab() -> None:
    assert {kind: (KINDS[kind].topic, KINDS[kind].page) for kind in PAYLOADS} == dict.fromkeys(
        PAYLOADS, ("wallet", "wallet")
    )
    assert "wallet" in TOPICS


def test_english_texts() -> None:
    t = translator("en")
    assert render("deposit_credited", PAYLOADS["deposit_credited"], t) == (
        "💰 Deposit credited: <b>25.5 USDT</b> on BNB Chain"
    )
    assert render("withdrawal_sent", PAYLOADS["withdrawal_sent"], t) == (
        "📤 Withdrawal sent: <b>0.25 ETH</b> to 0x12…abcd on Ethereum"
    )
    returned = {
        reason: render(
            "withdrawal_returned", {**PAYLOADS["withdrawal_returned"], "reason": reason}, t
        )
        for reason in ("cancelled", "rejected", "failed", "expired")
    }
    assert returned["cancelled"] == (
        "↩️ Withdrawal of <b>10 USDT</b> returned to your balance: you cancelled it"
    )
    assert len(set(returned.values())) == 4  # each reason says something of its own
    assert topic_label("wallet", t) == "Deposits and withdrawals"


def test_a_chain_or_reason_without_a_text_is_shown_as_named() -> None:
    t = translator("en")
    other = {**PAYLOADS["deposit_credited"], "chain": "ton"}
    assert render("deposit_credited", other, t).endswith(" on ton")
    odd = {**PAYLOADS["withdrawal_returned"], "reason": "lost"}
    assert render("withdrawal_returned", odd, t).endswith(": lost")


@pytest.mark.parametrize("language", languages())
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_every_language_renders_every_kind_and_escapes_every_value(
    kind: str, language: str
) -> None:
    t = translator(language)
    text = render(kind, PAYLOADS[kind], t)
    assert "{" not in text and "}" not in text  # every placeholder filled
    if language != "en":
        assert text != render(kind, PAYLOADS[kind], translator("en"))  # really translated
    for field in PAYLOADS[kind]:
        hostile = render(kind, {**PAYLOADS[kind], field: HOSTILE}, t)
        assert HOSTILE not in hostile and "<i>" not in hostile, (field, hostile)
        if field not in HIDDEN[kind]:
            assert "&lt;i&gt;&amp;x&lt;/i&gt;" in hostile, (field, hostile)
    if language != "en":
        assert topic_label("wallet", t) != topic_label("wallet", translator("en"))
