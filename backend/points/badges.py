"""Points badges: tiers by lifetime points, their NFT metadata (ERC-721 and TON TEP-64), and
the badge image as SVG.

Pure: points and names in, plain data and text out.  Minting on chain comes later; the
metadata is already what a token URI will point at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from backend.config import ROOT


@dataclass(frozen=True, slots=True)
class Tier:
    slug: str
    """The tier in URLs and the API: lowercase, stable."""
    name: str
    threshold: int
    """Lifetime points that earn it."""
    rank: int
    """1 for the first tier, counting up."""
    light: str
    mid: str
    dark: str
    """The metal's gradient, top-left to bottom-right (#rrggbb)."""
    background: str
    """The card's colour, rrggbb without '#' (ERC-721's ``background_color`` wants it so)."""


# With the default rules (POINTS_*), a check-in on day n of a streak pays 100 + 20·(n-1), flat
# at 220 from day 7: a first week pays 1,120 and a 30-day month 6,180.
#   Bronze 1,000: a week of daily check-ins, or a first trade and a linked wallet (750) and two
#     check-ins: anyone who comes back for a week has one.
#   Silver 10,000: seven weeks of check-ins alone, or a month of them and ~4,000 USDT traded.
#   Gold 50,000: check-ins alone take over seven months; meant for traders (50,000 USDT taker,
#     25,000 maker) and referrers.
#   Diamond 250,000: over three years of check-ins alone; a heavy trader's or a network's badge.
# Past Silver each tier is five times the last, so each stays rarer by about the same factor.
TIERS: tuple[Tier, ...] = (
    Tier("bronze", "Bronze", 1_000, 1, "#f6d0ac", "#cd7f32", "#6e3b14", "2a1a10"),
    Tier("silver", "Silver", 10_000, 2, "#ffffff", "#c3cad4", "#5f6874", "1b2029"),
    Tier("gold", "Gold", 50_000, 3, "#fff3b0", "#f2c230", "#9a6a06", "291f07"),
    Tier("diamond", "Diamond", 250_000, 4, "#ecfcff", "#7dd3fc", "#6d5dfc", "0f1933"),
)
_BY_SLUG = {tier.slug: tier for tier in TIERS}


class MetadataFormat(StrEnum):
    ERC721 = "erc721"
    TEP64 = "tep64"


def tier_by_slug(slug: str) -> Tier | None:
    return _BY_SLUG.get(slug)


def earned_tiers(points: int) -> list[Tier]:
    """Every tier ``points`` has reached, lowest first."""
    return [tier for tier in TIERS if points >= tier.threshold]


def tier_for(points: int) -> Tier | None:
    """The highest tier reached, None below the first."""
    earned = earned_tiers(points)
    return earned[-1] if earned else None


@dataclass(frozen=True, slots=True)
class NextTier:
    tier: Tier
    points_needed: int


def next_tier(points: int) -> NextTier | None:
    """The next tier up and the points still missing; None once the top tier is reached."""
    for tier in TIERS:
        if points < tier.threshold:
            return NextTier(tier, tier.threshold - points)
    return None


# Characters XML 1.0 forbids even escaped (C0 controls but tab/newline/CR, U+FFFE/FFFF, lone
# surrogates): one of them in a Telegram name would make the whole image unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# What fits on the badge at its font size; a longer name is cut with an ellipsis.
MAX_HOLDER_CHARS = 24


@dataclass(frozen=True, slots=True)
class Badge:
    tier: Tier
    holder: str
    """The holder's first name as Telegram gave it (escaped where it is rendered)."""
    app: str

    @property
    def holder_shown(self) -> str:
        name = " ".join(_NOT_XML.sub("", self.holder).split())
        if len(name) > MAX_HOLDER_CHARS:
            name = name[: MAX_HOLDER_CHARS - 1].rstrip() + "…"
        return name or "Anonymous"

    @property
    def name(self) -> str:
        return f"{self.app} {self.tier.name} Badge"

    @property
    def description(self) -> str:
        return (
            f"Awarded to {self.holder_shown} for earning {self.tier.threshold:,} lifetime points "
            f"on {self.app}."
        )

    @property
    def attributes(self) -> list[dict[str, Any]]:
        # Only what the badge stands for: the holder's current balance is theirs, not the token's.
        return [
            {"trait_type": "Tier", "value": self.tier.name},
            {"trait_type": "Rank", "value": self.tier.rank},
            {"trait_type": "Points threshold", "value": self.tier.threshold},
        ]


def erc721_metadata(badge: Badge, *, image: str, external_url: str) -> dict[str, Any]:
    """The ERC-721 metadata JSON schema (name, description, image), with OpenSea's
    ``external_url``, ``background_color`` and ``attributes``, which wallets read too."""
    return {
        "name": badge.name,
        "description": badge.description,
        "image": image,
        "external_url": external_url,
        "background_color": badge.tier.background,
        "attributes": badge.attributes,
    }


def tep64_metadata(badge: Badge, *, image: str) -> dict[str, Any]:
    """TEP-64 off-chain NFT item metadata: its ``name``, ``description`` and ``image`` (``uri``
    and ``image_data`` are for on-chain layouts and inline images, not needed here), with the
    ``attributes`` list that TON marketplaces (Getgems) show as traits."""
    return {
        "name": badge.name,
        "description": badge.description,
        "image": image,
        "attributes": badge.attributes,
    }


TEMPLATE_DIR = ROOT / "webapp" / "templates" / "badges"


@cache
def _template() -> Template:
    # Its own environment: autoescape on for every value (the app's engine escapes by file
    # extension, and .svg is not among them); StrictUndefined so a typo fails loudly.
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("badge.svg")


def render_svg(badge: Badge) -> str:
    """The badge image: a standalone SVG with no scripts and no external references."""
    return _template().render(
        tier=badge.tier,
        app=badge.app,
        holder=badge.holder_shown,
        threshold=f"{badge.tier.threshold:,}",
        label=f"{badge.app} {badge.tier.name} badge for {badge.holder_shown}",
    )
