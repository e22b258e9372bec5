"""What a notification says, per kind, in the user's language.  Formatting lives here, not in
the cause: a cause queues a kind and a payload of plain values.

Messages use Telegram's HTML parse mode; every value from a payload is escaped.  Texts are
gettext messages (``backend/i18n.py``): English in the code, other languages in the catalogs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiogram import html

from backend.i18n import Translator

Payload = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Kind:
    topic: str
    """What the user turns on or off, or gathers into a digest (several kinds share one)."""
    page: str
    """The mini-app tab the message's button opens."""
    render: Callable[[Payload, Translator], str]


def _text(value: Any) -> str:
    return html.quote(str(value))


def _order_filled(p: Payload, t: Translator) -> str:
    text = (
        t.gettext("✅ Bought {qty} {base} at {price}")
        if p["side"] == "buy"
        else t.gettext("✅ Sold {qty} {base} at {price}")
    )
    return text.format(
        qty=_text(p["qty"]), base=_text(str(p["market"]).split("-")[0]), price=_text(p["price"])
    )


def _referral_reward(p: Payload, t: Translator) -> str:
    amount = int(p["amount"])
    text = t.ngettext(
        "🎁 <b>+{amount} point</b> from your level {level} referral",
        "🎁 <b>+{amount} points</b> from your level {level} referral",
        amount,
    ).format(amount=amount, level=int(p["level"]))
    if p.get("status") == "pending":
        text += " " + t.gettext("(released when they become active)")
    return text


def _points_adjusted(p: Payload, t: Translator) -> str:
    amount = int(p["amount"])
    text = t.ngettext("<b>{amount} point</b>: {note}", "<b>{amount} points</b>: {note}", amount)
    return text.format(amount=f"{amount:+}", note=_text(p.get("note", "")))


def _referral_joined(p: Payload, t: Translator) -> str:
    return t.gettext("👋 <b>{name}</b> joined with your referral link").format(
        name=_text(p.get("name") or "?")
    )


def _price_alert(p: Payload, t: Translator) -> str:
    text = (
        t.gettext("🔔 <b>{market}</b> rose to {price}: now {now}")
        if p["direction"] == "above"
        else t.gettext("🔔 <b>{market}</b> fell to {price}: now {now}")
    )
    return text.format(
        market=_text(p["market"]), price=_text(p["price"]), now=_text(p["fired_price"])
    )


def _signal(p: Payload, t: Translator) -> str:
    text = (
        t.gettext("📈 <b>{market}</b>: up, {probability} over the next {hours} h (95% VaR {var})")
        if p["direction"] == "up"
        else t.gettext(
            "📉 <b>{market}</b>: down, {probability} over the next {hours} h (95% VaR {var})"
        )
    )
    up = float(p["probability_up"])
    return text.format(
        market=_text(p["market"]),
        probability=f"{(up if p['direction'] == 'up' else 1 - up):.1%}",
        hours=_text(p["horizon_hours"]),
        var=f"{float(p['var95']):.2%}",
    )


# How a chain is named to users; a chain missing here is shown by its configured name.
CHAIN_NAMES = {"ethereum": "Ethereum", "bnb": "BNB Chain"}


def _chain(p: Payload) -> str:
    return _text(CHAIN_NAMES.get(str(p["chain"]), p["chain"]))


def _sum(p: Payload) -> str:
    return f"{_text(p['amount'])} {_text(p['asset'])}"


def _short_address(address: str) -> str:
    """``0x1234…abcd``: enough to recognise one's own address, short enough for a phone."""
    return address if len(address) <= 12 else f"{address[:4]}…{address[-4:]}"


def _deposit_credited(p: Payload, t: Translator) -> str:
    return t.gettext("💰 Deposit credited: <b>{amount}</b> on {chain}").format(
        amount=_sum(p), chain=_chain(p)
    )


def _withdrawal_sent(p: Payload, t: Translator) -> str:
    return t.gettext("📤 Withdrawal sent: <b>{amount}</b> to {address} on {chain}").format(
        amount=_sum(p), address=_text(_short_address(str(p["address"]))), chain=_chain(p)
    )


def _withdrawal_returned(p: Payload, t: Translator) -> str:
    reasons = {
        "cancelled": t.gettext("you cancelled it"),
        "rejected": t.gettext("it was not approved"),
        "failed": t.gettext("the transaction failed on the chain"),
        "expired": t.gettext("it could not be sent in time"),
    }
    reason = reasons.get(str(p["reason"])) or _text(p["reason"])
    return t.gettext("↩️ Withdrawal of <b>{amount}</b> returned to your balance: {reason}").format(
        amount=_sum(p), reason=reason
    )


KINDS: dict[str, Kind] = {
    "order_filled": Kind("trades", "trade", _order_filled),
    "referral_reward": Kind("points", "points", _referral_reward),
    "points_adjusted": Kind("points", "points", _points_adjusted),
    "referral_joined": Kind("referrals", "points", _referral_joined),
    "price_alert": Kind("alerts", "settings", _price_alert),
    "signal": Kind("signals", "signals", _signal),
    "deposit_credited": Kind("wallet", "wallet", _deposit_credited),
    "withdrawal_sent": Kind("wallet", "wallet", _withdrawal_sent),
    "withdrawal_returned": Kind("wallet", "wallet", _withdrawal_returned),
}
TOPICS = ("trades", "points", "referrals", "alerts", "signals", "wallet")
# Off until the user turns them on: a call on the market every few hours is not what everyone
# signed up for, and a model without an edge sends none anyway.
OPT_IN_TOPICS = ("signals",)
# A price alert is asked for once and wanted at once, and so is news of one's own money; the
# others can pile up.
DIGEST_TOPICS = ("trades", "points", "referrals")
# A digest lists this many messages and counts the rest: a phone screen, not a statement.
DIGEST_LINES = 8


def topic_label(topic: str, t: Translator) -> str:
    labels = {
        "trades": t.gettext("Order fills"),
        "points": t.gettext("Points"),
        "referrals": t.gettext("New referrals"),
        "alerts": t.gettext("Price alerts"),
        "signals": t.gettext("AI signals"),
        "wallet": t.gettext("Deposits and withdrawals"),
    }
    return labels[topic]


def render(kind: str, payload: Payload, t: Translator) -> str:
    """The message text; KeyError for a kind nobody wrote a text for (a bug, dead-lettered)."""
    return KINDS[kind].render(payload, t)


def render_digest(topic: str, items: Sequence[tuple[str, Payload]], t: Translator) -> str:
    """Several messages of one topic as one: a count, then the first few, then how many more."""
    header = t.ngettext(
        "<b>{topic}</b>: {count} update", "<b>{topic}</b>: {count} updates", len(items)
    ).format(topic=_text(topic_label(topic, t)), count=len(items))
    lines = [f"• {render(kind, payload, t)}" for kind, payload in items[:DIGEST_LINES]]
    rest = len(items) - DIGEST_LINES
    if rest > 0:
        lines.append(t.ngettext("…and {count} more", "…and {count} more", rest).format(count=rest))
    return "\n".join([header, *lines])


def button_label(t: Translator) -> str:
    return t.gettext("Open SimplRefQ")
