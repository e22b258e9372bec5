"""Topic grammar and rules (pure): which topics exist, which carry state, who may read them."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKET = r"[A-Z0-9]{2,10}-[A-Z0-9]{2,10}"
_TIMEFRAME = r"1m|5m|15m|1h|4h|1d"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "prices": re.compile(r"prices"),
    "book": re.compile(rf"book:({_MARKET})"),
    "trades": re.compile(rf"trades:({_MARKET})"),
    "candles": re.compile(rf"candles:({_MARKET}):({_TIMEFRAME})"),
    "leaderboard": re.compile(r"leaderboard"),
    "signals": re.compile(rf"signals:({_MARKET})"),
    "user": re.compile(r"user:([1-9][0-9]{0,18})"),
}
# State topics describe a current value (the latest wins); a late subscriber needs a snapshot,
# and a slow one may skip to the newest state.  Event topics are a history: nothing may be
# skipped, so a consumer that cannot keep up is disconnected instead.
_STATE_KINDS = frozenset({"prices", "book", "candles", "leaderboard"})
MAX_TOPIC_LENGTH = 64


class TopicError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    kind: str
    owner_id: int | None = None

    @property
    def is_state(self) -> bool:
        return self.kind in _STATE_KINDS

    @property
    def is_private(self) -> bool:
        return self.owner_id is not None


def parse_topic(name: object) -> Topic:
    """The topic ``name`` names, or TopicError("unknown_topic")."""
    if not isinstance(name, str) or len(name) > MAX_TOPIC_LENGTH:
        raise TopicError("unknown_topic", "a topic is a short string")
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(name)
        if match:
            owner = int(match.group(1)) if kind == "user" else None
            return Topic(name=name, kind=kind, owner_id=owner)
    raise TopicError("unknown_topic", f"no such topic: {name!r}")


def check_access(topic: Topic, user_id: int | None) -> None:
    """Private topics only for their owner."""
    if topic.is_private and topic.owner_id != user_id:
        raise TopicError("forbidden", f"{topic.name} is private to its owner")
