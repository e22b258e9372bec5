"""Cross-site writes, forwarded addresses, development secrets."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from backend.config import Settings
from backend.users.models import Role
from tests.helpers import RunningServer, Server, audit_entries, grant, make_settings, signed_in


async def cookie_client(server: Server, headers: dict[str, str]) -> httpx.AsyncClient:
    token = headers["Authorization"].removeprefix("Bearer ")
    return server.client(cookies={"simplrefq_session": token})


async def test_cookie_writes_from_another_site_are_refused(
    server: Server, client: httpx.AsyncClient, new_telegram_id
) -> None:
    admin, headers = await signed_in(client, new_telegram_id())
    await grant(server, admin["id"], Role.ADMIN)
    target, _ = await signed_in(client, new_telegram_id())
    url = f"/api/admin/users/{target['id']}/role"
    async with await cookie_client(server, headers) as browser:
        for forged in (
            {"Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.app.example.test"},
        ):
            response = await browser.put(url, json={"role": "moderator"}, headers=forged)
            assert response.status_code == 403, forged
            assert response.json()["error"] == "cross_site"
        # From the app's own page the same write goes through.
        ok = await browser.put(
            url, json={"role": "moderator"}, headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert ok.status_code == 200
        same_origin = await browser.put(url, json={"role": "user"}, headers={"Origin": server.url})
        assert same_origin.status_code == 200
    # A bearer token is never attached by a browser on its own, so it needs no such check.
    bearer = await client.put(
        url, json={"role": "moderator"}, headers={**headers, "Origin": "https://evil.example"}
    )
    assert bearer.status_code == 200


async def test_forwarded_address_is_trusted_only_from_the_configured_proxy(
    tmp_path: Path, new_telegram_id
) -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    # By default no proxy is trusted: anything on the host could otherwise pick its address.
    assert Settings(app={"data_dir": tmp_path}).app.forwarded_allow_ips == ""
    for trusted, expected_ip in (
        ("127.0.0.1", "203.0.113.9"),
        ("10.0.0.1", "127.0.0.1"),
        ("", "127.0.0.1"),
    ):
        settings = make_settings(tmp_path, app={"forwarded_allow_ips": trusted})
        async with RunningServer(settings) as server, server.client() as client:
            admin, headers = await signed_in(client, new_telegram_id())
            await grant(server, admin["id"], Role.ADMIN)
            await client.get("/api/admin/users", headers={**headers, **spoofed})
            (entry,) = [
                e for e in await audit_entries(server, "user.list") if e.actor_id == admin["id"]
            ]
            assert entry.ip == expected_ip


def test_development_secrets_are_made_once_and_kept(tmp_path: Path) -> None:
    first = Settings(app={"data_dir": tmp_path})
    second = Settings(app={"data_dir": tmp_path})
    assert len(first.auth.jwt_secret) >= 32
    assert first.auth.jwt_secret == second.auth.jwt_secret
    assert first.bot.webhook_secret == second.bot.webhook_secret != first.auth.jwt_secret
    assert (tmp_path / "secrets" / "jwt").stat().st_mode & 0o077 == 0
    other = Settings(app={"data_dir": tmp_path / "elsewhere"})
    assert other.auth.jwt_secret != first.auth.jwt_secret


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"bot": {"token": "1:x", "webhook_secret": ""}}, "BOT_WEBHOOK_SECRET"),
        ({"bot": {"token": "1:x", "webhook_secret": "short"}}, "BOT_WEBHOOK_SECRET"),
        ({"bot": {"token": "1:x", "webhook_secret": "x" * 31 + "!"}}, "BOT_WEBHOOK_SECRET"),
        ({"database": {"url": "sqlite+aiosqlite:///x.db"}}, "DATABASE_URL"),
        ({"auth": {"jwt_secret": "s" * 40, "cookie_samesite": "none"}}, "SameSite"),
        ({"auth": {"jwt_secret": "s" * 40, "cookie_secure": False}}, "Secure"),
        ({"auth": {"jwt_secret": "s" * 40, "telegram_public_key": "zz"}}, "64 hex"),
    ],
)
def test_production_refuses_weak_settings(override: dict, complaint: str) -> None:
    values: dict = {
        "app": {"env": "production"},
        "auth": {"jwt_secret": "s" * 40},
        "database": {"url": "postgresql+asyncpg://x/y"},
        "redis": {"url": "redis://x"},
    }
    for group, fields in override.items():
        values[group] = {**values.get(group, {}), **fields}
    with pytest.raises(ValueError, match=complaint):
        Settings(**values)
