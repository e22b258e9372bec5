"""Points badges: tiers, both metadata formats, the SVG image, and the HTTP routes."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import httpx
import pytest

from backend.config import PointsSettings
from backend.db.uow import unit_of_work
from backend.ledger.domain import TransferRequest
from backend.points import badges
from backend.points.badges import Badge, tier_by_slug
from backend.points.rules import Rules
from backend.testing.telegram import base_fields, signed_init_data, user_fields
from tests.helpers import Server, signed_in

SVG = "{http://www.w3.org/2000/svg}"
# Short enough to be shown whole (see MAX_HOLDER_CHARS); closes the text element if unescaped.
HOSTILE = "<script>&\"'</text>\x01"


def tier(slug: str) -> badges.Tier:
    found = tier_by_slug(slug)
    assert found is not None
    return found


# --- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "current", "upcoming", "needed", "earned"),
    [
        (0, None, "bronze", 1_000, []),
        (999, None, "bronze", 1, []),
        (1_000, "bronze", "silver", 9_000, ["bronze"]),
        (49_999, "silver", "gold", 1, ["bronze", "silver"]),
        (50_000, "gold", "diamond", 200_000, ["bronze", "silver", "gold"]),
        (10**9, "diamond", None, None, ["bronze", "silver", "gold", "diamond"]),
    ],
)
def test_tiers_by_lifetime_points(points, current, upcoming, needed, earned) -> None:
    reached = badges.tier_for(points)
    assert (reached.slug if reached else None) == current
    following = badges.next_tier(points)
    if upcoming is None:
        assert following is None
    else:
        assert following is not None
        assert (following.tier.slug, following.points_needed) == (upcoming, needed)
    assert [t.slug for t in badges.earned_tiers(points)] == earned


def test_tiers_are_ordered_and_unknown_slugs_are_none() -> None:
    thresholds = [t.threshold for t in badges.TIERS]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)
    assert [t.rank for t in badges.TIERS] == [1, 2, 3, 4]
    assert tier_by_slug("platinum") is None and tier_by_slug("Gold") is None


def test_the_thresholds_comment_holds_with_the_default_rules() -> None:
    """badges.py explains the numbers in check-in days; keep that explanation true."""
    rules, start = Rules(PointsSettings()), date(2025, 1, 1)
    totals, last, streak, total = [], None, 0, 0
    for day in range(1200):
        checkin = rules.checkin(last, streak, start + timedelta(days=day))
        assert checkin is not None
        last, streak, total = start + timedelta(days=day), checkin.streak, total + checkin.points
        totals.append(total)

    def days_to(points: int) -> int:
        return next(day + 1 for day, total in enumerate(totals) if total >= points)

    assert days_to(tier("bronze").threshold) == 7
    assert totals[29] < tier("silver").threshold
    assert 42 <= days_to(tier("silver").threshold) <= 56
    assert days_to(tier("gold").threshold) > 7 * 30
    assert days_to(tier("diamond").threshold) > 3 * 365


def test_erc721_metadata() -> None:
    badge = Badge(tier("gold"), "Ada", "SimplRefQ")
    metadata = badges.erc721_metadata(
        badge, image="https://x.test/img.svg", external_url="https://x.test"
    )
    assert metadata == {
        "name": "SimplRefQ Gold Badge",
        "description": "Awarded to Ada for earning 50,000 lifetime points on SimplRefQ.",
        "image": "https://x.test/img.svg",
        "external_url": "https://x.test",
        "background_color": "291f07",
        "attributes": [
            {"trait_type": "Tier", "value": "Gold"},
            {"trait_type": "Rank", "value": 3},
            {"trait_type": "Points threshold", "value": 50_000},
        ],
    }
    for t in badges.TIERS:
        assert len(t.background) == 6 and int(t.background, 16) >= 0


def test_tep64_metadata_uses_the_standards_names() -> None:
    badge = Badge(tier("bronze"), "Ada", "SimplRefQ")
    metadata = badges.tep64_metadata(badge, image="https://x.test/img.svg")
    assert set(metadata) == {"name", "description", "image", "attributes"}
    assert metadata["name"] == "SimplRefQ Bronze Badge"
    assert metadata["image"] == "https://x.test/img.svg"
    assert {"trait_type": "Tier", "value": "Bronze"} in metadata["attributes"]


def test_holder_names_are_cleaned_and_cut() -> None:
    assert Badge(tier("gold"), "  Ada \x00\x1f Lovelace ", "S").holder_shown == "Ada Lovelace"
    assert Badge(tier("gold"), "", "S").holder_shown == "Anonymous"
    long = Badge(tier("gold"), "A" * 100, "S").holder_shown
    assert len(long) == badges.MAX_HOLDER_CHARS and long.endswith("…")


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)  # noqa: S314 (our own output, under test)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == "0 0 512 512"
    for element in root.iter():
        assert element.tag != f"{SVG}script"
        for name, value in element.attrib.items():
            assert not name.startswith("on") and "href" not in name
            assert "http" not in value and "javascript:" not in value
    return root


@pytest.mark.parametrize("slug", [t.slug for t in badges.TIERS])
def test_svg_is_standalone_and_escapes_the_holder(slug: str) -> None:
    badge = Badge(tier(slug), HOSTILE, "SimplRefQ")
    text = badges.render_svg(badge)
    assert "<script" not in text and "xmlns=" in text
    root = parse_svg(text)
    shown = [element.text for element in root.iter(f"{SVG}text")]
    assert badge.holder_shown in shown
    assert badge.holder_shown == HOSTILE.rstrip("\x01")
    assert badge.tier.name.upper() in shown


# --- HTTP -------------------------------------------------------------------------------------


async def give_points(server: Server, user_id: int, amount: int) -> None:
    request = TransferRequest(
        f"test-{uuid.uuid4().hex}", "grant", amount, "sys:rewards:PTS", f"user:{user_id}:PTS", "PTS"
    )
    resources = server.app.state.resources
    async with unit_of_work(resources.db) as uow:
        await resources.ledger.submit(uow, [request])


async def test_unearned_and_missing_badges_are_404(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    user, _ = await signed_in(client, telegram_id)
    await give_points(server, user["id"], 999)
    for path in (f"/api/badges/{user['id']}/bronze", f"/api/badges/{user['id']}/bronze/image.svg"):
        response = await client.get(path)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "badge_not_earned"
        # A refusal is not cached: the badge may be earned a minute later.
        assert "max-age" not in response.headers.get("cache-control", "")
    missing = await client.get("/api/badges/999999999/bronze")
    assert missing.status_code == 404 and missing.json()["error"] == "badge_not_earned"


async def test_bad_tier_or_format_is_400(client: httpx.AsyncClient, telegram_id: int) -> None:
    user, _ = await signed_in(client, telegram_id)
    unknown = await client.get(f"/api/badges/{user['id']}/platinum")
    assert unknown.status_code == 400 and unknown.json()["error"] == "unknown_tier"
    unknown_image = await client.get(f"/api/badges/{user['id']}/platinum/image.svg")
    assert unknown_image.status_code == 400
    bad_format = await client.get(f"/api/badges/{user['id']}/bronze?format=erc1155")
    assert bad_format.status_code == 400 and bad_format.json()["error"] == "bad_request"


async def test_earned_badge_metadata_in_both_formats(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    user, _ = await signed_in(client, telegram_id)
    await give_points(server, user["id"], 12_345)
    base = server.settings.app.base_url
    image = f"{base}/api/badges/{user['id']}/silver/image.svg"

    erc721 = await client.get(f"/api/badges/{user['id']}/silver")  # public: no session
    assert erc721.status_code == 200, erc721.text
    assert "max-age=300" in erc721.headers["cache-control"]
    body = erc721.json()
    assert body["name"] == "SimplRefQ Silver Badge"
    assert body["description"].startswith(f"Awarded to {user['first_name']} ")
    assert body["image"] == image and body["external_url"] == base
    assert body["background_color"] == tier("silver").background
    assert {"trait_type": "Tier", "value": "Silver"} in body["attributes"]

    tep64 = await client.get(f"/api/badges/{user['id']}/silver", params={"format": "tep64"})
    assert tep64.status_code == 200
    assert set(tep64.json()) == {"name", "description", "image", "attributes"}
    assert tep64.json()["image"] == image

    # Earned tiers below the current one stay valid; the next one up is not yet earned.
    assert (await client.get(f"/api/badges/{user['id']}/bronze")).status_code == 200
    assert (await client.get(f"/api/badges/{user['id']}/gold")).status_code == 404


async def test_badge_image_escapes_a_hostile_name(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    fields = base_fields(telegram_id)
    fields["user"] = json.dumps(user_fields(telegram_id, first_name=HOSTILE))
    response = await client.post("/api/auth/telegram", json={"init_data": signed_init_data(fields)})
    assert response.status_code in (200, 201), response.text
    user = response.json()["user"]
    assert user["first_name"] == HOSTILE
    await give_points(server, user["id"], 1_000)

    image = await client.get(f"/api/badges/{user['id']}/bronze/image.svg")
    assert image.status_code == 200, image.text
    assert image.headers["content-type"].startswith("image/svg+xml")
    assert (
        image.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "max-age=300" in image.headers["cache-control"]
    assert "<script" not in image.text
    root = parse_svg(image.text)
    assert HOSTILE.rstrip("\x01") in [element.text for element in root.iter(f"{SVG}text")]


async def test_my_badges_needs_a_session(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    assert (await client.get("/api/points/badges")).status_code == 401
    user, headers = await signed_in(client, telegram_id)

    empty = (await client.get("/api/points/badges", headers=headers)).json()
    assert empty["points"] == 0 and empty["current"] is None and empty["earned"] == []
    assert empty["next"] == {
        "tier": "bronze",
        "name": "Bronze",
        "threshold": 1_000,
        "points_needed": 1_000,
    }
    assert [t["tier"] for t in empty["tiers"]] == ["bronze", "silver", "gold", "diamond"]

    await give_points(server, user["id"], 60_000)
    mine = (await client.get("/api/points/badges", headers=headers)).json()
    assert mine["points"] == 60_000 and mine["current"]["tier"] == "gold"
    assert mine["next"]["tier"] == "diamond" and mine["next"]["points_needed"] == 190_000
    assert [b["tier"] for b in mine["earned"]] == ["bronze", "silver", "gold"]
    base = f"{server.settings.app.base_url}/api/badges/{user['id']}/gold"
    gold = mine["earned"][-1]
    assert gold["metadata_url"] == base
    assert gold["tep64_url"] == f"{base}?format=tep64"
    assert gold["image_url"] == f"{base}/image.svg"
    # The URLs it hands out answer (relative to this test server).
    for url in (gold["metadata_url"], gold["tep64_url"], gold["image_url"]):
        assert (await client.get(url.removeprefix(server.settings.app.base_url))).status_code == 200
