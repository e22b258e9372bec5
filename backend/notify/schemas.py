"""What the notification settings API reads and says."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

Clock = Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}$")]


class QuietHours(msgspec.Struct, forbid_unknown_fields=True):
    start: Clock
    """Local time ``HH:MM`` when messages stop; may be later than ``end`` (22:00 to 07:00)."""
    end: Clock


class SettingsChange(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields present change; ``quiet_hours: null`` turns quiet hours off and
    ``language: null`` follows Telegram's language again."""

    topics: dict[Annotated[str, msgspec.Meta(max_length=32)], bool] | UnsetType = UNSET
    digest: dict[Annotated[str, msgspec.Meta(max_length=32)], bool] | UnsetType = UNSET
    quiet_hours: QuietHours | UnsetType | None = UNSET
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    language: Annotated[str, msgspec.Meta(max_length=8)] | UnsetType | None = UNSET


class SettingsView(msgspec.Struct):
    topics: dict[str, bool]
    """Each topic: on (true) or muted."""
    digest: dict[str, bool]
    """Each topic that can be gathered: gathered into one message per window (true) or not."""
    quiet_hours: QuietHours | None
    time_zone: str
    language: str | None
    """Null: the language Telegram reports."""
    languages: list[str]
    digest_minutes: int
