"""The served mini-app in real headless Chromium (Debian's /usr/bin/chromium via Playwright)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

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
