"""What the API says about users."""

from __future__ import annotations

from datetime import datetime

import msgspec

from backend.users.models import Role, User


class UserProfile(msgspec.Struct):
    id: int
    telegram_id: int
    username: str | None
    first_name: str
    last_name: str | None
    language_code: str | None
    is_premium: bool
    photo_url: str | None
    role: str
    referral_code: str
    referred_by_id: int | None
    is_demo: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserProfile:
        assert user.id is not None
        return cls(
            id=user.id,
            telegram_id=user.telegram_id,
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
            language_code=user.language_code,
            is_premium=user.is_premium,
            photo_url=user.photo_url,
            role=user.role,
            referral_code=user.referral_code,
            referred_by_id=user.referred_by_id,
            is_demo=user.is_demo,
            created_at=user.created_at,
        )


class Me(msgspec.Struct):
    user: UserProfile
    referral_link: str | None
    referees: int


class RoleChange(msgspec.Struct):
    role: Role


class SessionsRevoked(msgspec.Struct):
    user_id: int
    revoked: int
    """How many live sessions were ended."""
