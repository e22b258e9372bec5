"""The served mini-app in real headless Chromium (Debian's /usr/bin/chromium via Playwright)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from backend.db.uow import unit_of_work
from backend.points.service import Points
from tests.conftest import IN_CI, RunningServer, Server, make_settings
from tests.telegram import base_fields, signed_init_data

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js*"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the phone-size screenshots go (SCREENSHOT_DIR to keep them)."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screens")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("Chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        await browser.close()


async def open_page(browser: Browser, telegram_stub: str | None) -> tuple[Page, list[str]]:
    """A 360-px phone page; Telegram's script is answered locally (no internet here)."""
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Failed requests the page expects (no Telegram script, a 401 probe) are not script errors.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )

    async def telegram(route: Route) -> None:
        if telegram_stub is None:
            await route.abort("internetdisconnected")
        else:
            await route.fulfill(body=telegram_stub, content_type="application/javascript")

    await page.route(TELEGRAM_SCRIPT, telegram)
    return page, errors


def telegram_stub(init_data: str, scheme: str = "dark") -> str:
    """Stands in for telegram-web-app.js inside the Telegram client, with signed initData."""
    return f"""
    window.__tg = {{ready: 0, expanded: 0, haptics: 0, handlers: {{}}}};
    window.Telegram = {{ WebApp: {{
      initData: {json.dumps(init_data)}, initDataUnsafe: {{}}, platform: "ios",
      colorScheme: "{scheme}", version: "8.0",
      isVersionAtLeast: () => true,
      ready() {{ window.__tg.ready++; }}, expand() {{ window.__tg.expanded++; }},
      onEvent(name, handler) {{ (window.__tg.handlers[name] ||= []).push(handler); }},
      offEvent() {{}},
      HapticFeedback: {{ selectionChanged() {{ window.__tg.haptics++; }} }},
    }} }};
    """


async def test_browser_without_telegram_signs_in_as_a_demo_user(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    assert await page.inner_text("#user-chip") == "Demo"
    assert await page.evaluate("htmx.version.startsWith('2.')")
    assert await page.evaluate("window.SimplRefQ.user().is_demo") is True
    # The ws extension registered itself with htmx.
    assert await page.evaluate("typeof htmx.defineExtension === 'function'")

    assert await page.is_visible("#panel-trade") and not await page.is_visible("#panel-points")
    await page.click("#tab-points")
    assert await page.is_visible("#panel-points") and not await page.is_visible("#panel-trade")
    assert await page.get_attribute("#tab-points", "aria-selected") == "true"

    # Reloading keeps the session (HttpOnly cookie) and the tab.
    user_id = await page.evaluate("window.SimplRefQ.user().id")
    await page.reload()
    await page.wait_for_selector("body[data-auth='ready']")
    assert await page.evaluate("window.SimplRefQ.user().id") == user_id
    assert await page.is_visible("#panel-points")
    shot = screenshots / f"demo-light-{server.settings.database_url.split(':')[0]}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert errors == []
    await page.close()


async def test_inside_telegram_signs_in_with_init_data_and_takes_the_theme(
    browser: Browser, server: Server, telegram_id: int, screenshots: Path
) -> None:
    init_data = signed_init_data(base_fields(telegram_id))
    page, errors = await open_page(browser, telegram_stub=telegram_stub(init_data))
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    assert await page.inner_text("#user-chip") == "Ada"
    assert await page.evaluate("window.SimplRefQ.user().telegram_id") == telegram_id
    assert await page.get_attribute("html", "data-theme") == "dark"
    assert await page.evaluate("window.__tg.ready") == 1
    await page.click("#tab-wallet")
    assert await page.evaluate("window.__tg.haptics") == 1
    # The API accepts the in-memory token the page holds.
    me = await page.evaluate("window.SimplRefQ.api('/api/me')")
    assert me["user"]["telegram_id"] == telegram_id
    await page.screenshot(path=str(screenshots / "telegram-dark.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_forged_init_data_shows_the_error_and_signs_nobody_in(
    browser: Browser, server: Server, telegram_id: int
) -> None:
    forged = signed_init_data(base_fields(telegram_id)).replace("Ada", "Eve")
    page, _ = await open_page(browser, telegram_stub=telegram_stub(forged))
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='failed']", timeout=10_000)
    assert "does not verify" in await page.inner_text("#auth-status")
    assert await page.evaluate("window.SimplRefQ.user()") is None
    await page.close()


async def test_the_header_ticker_is_live_and_resyncs_when_telegram_reactivates(
    browser: Browser, tmp_path: Path, telegram_id: int
) -> None:
    settings = make_settings(tmp_path, market={"feed": "simulator", "interval_seconds": 0.2})
    async with RunningServer(settings) as server:
        init_data = signed_init_data(base_fields(telegram_id))
        page, errors = await open_page(browser, telegram_stub=telegram_stub(init_data))
        await page.goto(server.url + "/")
        await page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)
        await page.wait_for_selector("#ticker .ticker-item", timeout=10_000)
        symbols = await page.locator("#ticker .ticker-symbol").all_inner_texts()
        assert symbols == ["TON", "ETH", "BNB"]
        first = await page.inner_text("#ticker")
        # Prices move: the fragment is swapped in again and again.
        await page.wait_for_function(
            "text => document.getElementById('ticker').innerText !== text",
            arg=first,
            timeout=10_000,
        )
        # Telegram says the app is back from the background: the page opens a fresh socket.
        await page.evaluate("window.__tg.handlers.activated.forEach(handler => handler())")
        assert await page.get_attribute("#live-status", "data-state") in ("reconnecting", "live")
        await page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)
        assert errors == []
        await page.close()


async def award(server: Server, user_id: int, points: int, reason: str, cause: str) -> None:
    """Points paid server-side, as a trade or a linked wallet would pay them."""
    service: Points = server.app.state.resources.points
    async with unit_of_work(server.app.state.resources.db) as uow:
        await service.award(uow, user_id, points, reason, cause)


async def open_points_tab(page: Page, server: Server) -> None:
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    await page.click("#tab-points")
    await page.wait_for_selector("#points[data-state='ready']", timeout=10_000)


async def test_points_tab_checks_in_shares_ranks_and_follows_the_hub(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_points_tab(page, server)
    user = await page.evaluate("window.SimplRefQ.user()")
    assert await page.inner_text("#pts-balance") == "0"
    assert await page.inner_text("#pts-checkin") == "Check in · +100"

    await page.click("#pts-checkin")
    await page.wait_for_selector("#pts-checkin[disabled]")
    await page.wait_for_function(
        "() => document.getElementById('pts-balance').textContent === '100'"
    )
    await page.wait_for_function(
        "() => document.getElementById('pts-checkin').textContent.startsWith('Checked in today')"
    )
    assert await page.inner_text("#pts-checkin") == "Checked in today — next: +120 tomorrow"
    assert "+100 points" in await page.inner_text("#pts-checkin-note")
    await page.wait_for_selector("#pts-history .pts-row")
    first = await page.inner_text("#pts-history .pts-row:first-child")
    assert "Daily check-in" in first and "+100" in first

    link = f"https://t.me/SimplRefQBot?startapp=ref_{user['referral_code']}"
    assert await page.inner_text("#pts-ref-link") == link
    assert await page.is_enabled("#pts-share") and await page.is_enabled("#pts-copy")
    assert "No friends yet" in await page.inner_text("#pts-referees")

    # The user's own row is on the board, highlighted, with the rank the API gives.
    await page.wait_for_selector("#pts-board .pts-row.is-me .pts-rank")
    board = await page.evaluate("window.SimplRefQ.api('/api/points/leaderboard')")
    mine = await page.inner_text("#pts-board .is-me")
    assert board["me"]["rank"] is not None and f"#{board['me']['rank']}" in mine
    assert "(you)" in mine and "100" in mine
    assert await page.inner_text("#pts-badge-next") == "Bronze badge in 900 points"

    # Points paid on the server reach the open page through the hub, without a reload.
    await award(server, user["id"], 500, "wallet_link", f"browser-test-{user['id']}")
    await page.wait_for_function(
        "() => document.getElementById('pts-balance').textContent === '600'", timeout=5_000
    )
    await page.wait_for_function(
        "() => document.querySelector('#pts-history .pts-row').innerText.includes('Wallet')",
        timeout=5_000,
    )
    await page.wait_for_function(
        "() => document.querySelector('#pts-board .is-me').textContent.includes('600')",
        timeout=5_000,
    )
    # Reaching a tier shows its badge, served by this app.
    await award(server, user["id"], 400, "first_trade", f"browser-test-{user['id']}")
    await page.wait_for_function(
        "() => document.querySelector('#pts-badge-list img')?.naturalWidth > 0", timeout=5_000
    )
    assert await page.get_attribute("#pts-badge-list img", "alt") == "Bronze badge"
    assert await page.inner_text("#pts-balance") == "1,000"

    # A 360-px phone: nothing sticks out sideways.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(screenshots / "points-light.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_points_tab_inside_telegram_shares_through_telegram(
    browser: Browser, server: Server, telegram_id: int, screenshots: Path
) -> None:
    stub = (
        telegram_stub(signed_init_data(base_fields(telegram_id)))
        + """
    window.Telegram.WebApp.openTelegramLink = (url) => { window.__tg.opened = url; };
    window.Telegram.WebApp.HapticFeedback.notificationOccurred = (kind) => {
      window.__tg.notified = kind;
    };
    """
    )
    page, errors = await open_page(browser, telegram_stub=stub)
    await open_points_tab(page, server)
    await page.click("#pts-checkin")
    await page.wait_for_selector("#pts-checkin[disabled]")
    await page.wait_for_function("() => window.__tg.notified === 'success'")

    referrals = await page.evaluate("window.SimplRefQ.api('/api/referrals')")
    await page.click("#pts-share")
    assert await page.evaluate("window.__tg.opened") == referrals["share_url"]
    assert referrals["share_url"].startswith("https://t.me/share/url?url=https%3A%2F%2Ft.me%2F")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(screenshots / "points-telegram-dark.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_points_history_pages_with_load_more(browser: Browser, server: Server) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    user_id = await page.evaluate("window.SimplRefQ.user().id")
    for n in range(22):
        await award(server, user_id, 10, "grant", f"browser-page-{user_id}-{n}")
    await page.click("#tab-points")
    await page.wait_for_selector("#points[data-state='ready']", timeout=10_000)
    assert await page.locator("#pts-history .pts-row").count() == 20
    await page.click("#pts-more")
    await page.wait_for_function(
        "() => document.querySelectorAll('#pts-history .pts-row').length === 22"
    )
    assert await page.is_hidden("#pts-more")
    assert await page.inner_text("#pts-balance") == "220"
    assert errors == []
    await page.close()
