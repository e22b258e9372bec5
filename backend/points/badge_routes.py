"""HTTP: badge metadata and images (public: wallets and marketplaces fetch them unsigned), and
the signed-in user's own badges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from backend.auth.sessions import PUBLIC, SignedIn, signed_in_id
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import BadRequest, NotFound
from backend.inputs import INT32_MAX
from backend.points import badges
from backend.points.badges import Badge, MetadataFormat, Tier
from backend.points.queries import points_balance
from backend.users.service import get_user

# A badge changes only when a tier is reached or clawed back: a few minutes' staleness is fine
# and spares us a marketplace's re-fetch storms.
BADGE_CACHE = CacheControlHeader(max_age=300, public=True)
# The image may be opened on its own (a new tab, a wallet's webview): nothing in it may run
# or load; inline styles only.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


def metadata_url(
    settings: Settings, user_id: int, tier: Tier, fmt: MetadataFormat = MetadataFormat.ERC721
) -> str:
    url = f"{settings.app.base_url}/api/badges/{user_id}/{tier.slug}"
    return url if fmt is MetadataFormat.ERC721 else f"{url}?format={fmt.value}"


def image_url(settings: Settings, user_id: int, tier: Tier) -> str:
    return f"{settings.app.base_url}/api/badges/{user_id}/{tier.slug}/image.svg"


@dataclass(frozen=True, slots=True)
class TierInfo:
    tier: str
    name: str
    threshold: int

    @classmethod
    def of(cls, tier: Tier) -> TierInfo:
        return cls(tier.slug, tier.name, tier.threshold)


@dataclass(frozen=True, slots=True)
class EarnedBadge:
    tier: str
    name: str
    threshold: int
    metadata_url: str
    tep64_url: str
    image_url: str


@dataclass(frozen=True, slots=True)
class NextTierInfo:
    tier: str
    name: str
    threshold: int
    points_needed: int

    @classmethod
    def of(cls, upcoming: badges.NextTier) -> NextTierInfo:
        tier = upcoming.tier
        return cls(tier.slug, tier.name, tier.threshold, upcoming.points_needed)


@dataclass(frozen=True, slots=True)
class MyBadges:
    points: int
    current: TierInfo | None
    next: NextTierInfo | None
    earned: list[EarnedBadge]
    tiers: list[TierInfo]
    """Every tier, lowest first, for the progress bar."""


def _tier(slug: str) -> Tier:
    tier = badges.tier_by_slug(slug)
    if tier is None:
        known = ", ".join(t.slug for t in badges.TIERS)
        raise BadRequest(f"unknown tier {slug!r} (one of {known})", code="unknown_tier")
    return tier


async def _earned_badge(uow: UnitOfWork, settings: Settings, user_id: int, tier: Tier) -> Badge:
    """The badge, or NotFound when the user does not exist or has not reached the tier.

    Both answer the same 404, so the public routes do not tell who has an account.
    """
    not_earned = NotFound(f"no {tier.name} badge for user {user_id}", code="badge_not_earned")
    if not 0 < user_id <= INT32_MAX:
        raise not_earned
    async with uow.read() as session:
        try:
            user = await get_user(session, user_id)
        except NotFound:
            raise not_earned from None
        points = await points_balance(session, user_id)
    if points < tier.threshold:
        raise not_earned
    return Badge(tier=tier, holder=user.first_name, app=settings.app.name)


class BadgeController(Controller):
    path = "/api"
    tags = ["points"]

    @get("/badges/{user_id:int}/{tier:str}", opt=PUBLIC, cache_control=BADGE_CACHE)
    async def metadata(
        self,
        user_id: FromPath[int],
        tier: FromPath[str],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
        fmt: Annotated[
            MetadataFormat, QueryParameter(name="format", description="erc721 or tep64")
        ] = MetadataFormat.ERC721,
    ) -> dict[str, Any]:
        """A badge's NFT metadata: ERC-721 metadata JSON, or TON TEP-64 with format=tep64."""
        badge = await _earned_badge(uow, settings, user_id, _tier(tier))
        image = image_url(settings, user_id, badge.tier)
        if fmt is MetadataFormat.TEP64:
            return badges.tep64_metadata(badge, image=image)
        return badges.erc721_metadata(badge, image=image, external_url=settings.app.base_url)

    @get(
        "/badges/{user_id:int}/{tier:str}/image.svg",
        opt=PUBLIC,
        cache_control=BADGE_CACHE,
        media_type="image/svg+xml",
    )
    async def image(
        self,
        user_id: FromPath[int],
        tier: FromPath[str],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
    ) -> Response[str]:
        """The badge image (SVG)."""
        badge = await _earned_badge(uow, settings, user_id, _tier(tier))
        return Response(badges.render_svg(badge), media_type="image/svg+xml", headers=SVG_HEADERS)

    @get("/points/badges")
    async def mine(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
    ) -> MyBadges:
        """The signed-in user's badges: earned tiers with their URLs, and what comes next."""
        user_id = signed_in_id(request)
        async with uow.read() as session:
            points = await points_balance(session, user_id)
        current = badges.tier_for(points)
        upcoming = badges.next_tier(points)
        return MyBadges(
            points=points,
            current=TierInfo.of(current) if current else None,
            next=NextTierInfo.of(upcoming) if upcoming else None,
            earned=[
                EarnedBadge(
                    tier=tier.slug,
                    name=tier.name,
                    threshold=tier.threshold,
                    metadata_url=metadata_url(settings, user_id, tier),
                    tep64_url=metadata_url(settings, user_id, tier, MetadataFormat.TEP64),
                    image_url=image_url(settings, user_id, tier),
                )
                for tier in badges.earned_tiers(points)
            ],
            tiers=[TierInfo.of(tier) for tier in badges.TIERS],
        )
