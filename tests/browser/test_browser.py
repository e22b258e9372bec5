"""The served mini-app in real headless Chromium (Debian's /usr/bin/chromium via Playwright)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from backend.alerts.watcher import AlertWatcher
from backend.db.uow import unit_of_work
from backend.points.service import Points
from backend.testing.telegram import base_fields, signed_init_data
from tests.helpers import RunningServer, Server, make_settings, open_page, telegram_stub

pytestmark = pytest.mark.browser


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


# --- Settings: notification preferences and price alerts ----------------------------------------


async def open_settings(page: Page, server: Server, path: str = "/") -> None:
    await page.goto(server.url + path)
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    if not await page.is_visible("#panel-settings"):
        await page.click("#open-settings")
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)


async def saved_settings(page: Page) -> dict[str, Any]:
    """What the API holds, asked with the page's own session."""
    settings: dict[str, Any] = await page.evaluate(
        "window.SimplRefQ.api('/api/notifications/settings')"
    )
    return settings


async def wait_saved(page: Page) -> None:
    """Until the page says a change was saved; the note is then wiped, so the next one shows."""
    await page.wait_for_selector("#set-notify-note:has-text('Saved')", timeout=5_000)
    await page.eval_on_selector("#set-notify-note", "note => { note.textContent = ''; }")


async def test_settings_gear_opens_the_panel_and_back_returns_to_the_tab(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    assert await page.is_hidden("#panel-settings")
    # Settings sits behind the header's gear, not in the tab bar.
    assert await page.locator("#tabbar [role='tab']").count() == 4
    assert await page.get_attribute("#open-settings", "aria-label") == "Settings"
    await page.click("#tab-points")
    await page.click("#open-settings")
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)
    assert await page.is_visible("#panel-settings") and await page.is_hidden("#panel-points")
    assert await page.get_attribute("#open-settings", "aria-expanded") == "true"
    assert await page.locator("#tabbar [aria-selected='true']").count() == 0

    labels = await page.locator("#set-topics .set-label > span:first-child").all_inner_texts()
    assert labels == [
        "Order fills",
        "Digest",
        "Points",
        "Digest",
        "New referrals",
        "Digest",
        "Price alerts",
        "AI signals",
        "Deposits and withdrawals",
    ]
    assert await page.is_checked("#set-topic-trades")
    assert not await page.is_checked("#set-digest-trades")
    assert await page.get_attribute("#set-digest-points", "aria-label") == "Digest for Points"
    hint = await page.inner_text("#set-digest-points-hint")
    assert hint == "Gather this topic's messages into one every 15 minutes"
    assert await page.input_value("#set-tz") == "UTC"
    assert "Times are in UTC" in await page.inner_text("#set-quiet-hint")
    languages = await page.locator("#set-language option").evaluate_all(
        "options => options.map(o => [o.value, o.textContent])"
    )
    assert languages[0] == ["", "Same as Telegram"]
    assert [value for value, _ in languages[1:]] == ["en", "ru"]
    assert await page.input_value("#set-language") == ""
    # Every control has a name a screen reader can say.
    unnamed = await page.evaluate(
        """() => [...document.querySelectorAll('#panel-settings :is(input, select, button)')]
             .filter(el => el.checkVisibility() && !el.labels?.length)
             .filter(el => !el.getAttribute('aria-label') && !el.textContent.trim())
             .map(el => el.id)"""
    )
    assert unnamed == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(screenshots / "settings-light.png"), full_page=True)

    await page.click("#settings-back")
    assert await page.is_visible("#panel-points") and await page.is_hidden("#panel-settings")
    assert await page.get_attribute("#tab-points", "aria-selected") == "true"
    assert await page.get_attribute("#open-settings", "aria-expanded") == "false"
    # The gear toggles: a second tap goes back as well.
    await page.click("#tab-wallet")
    await page.click("#open-settings")
    await page.click("#open-settings")
    assert await page.is_visible("#panel-wallet") and await page.is_hidden("#panel-settings")
    assert errors == []
    await page.close()


async def test_settings_topic_switches_save_at_once_and_persist(
    browser: Browser, server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_settings(page, server)
    await page.click("#set-topic-trades")
    await wait_saved(page)
    # A muted topic has nothing to gather.
    assert await page.is_disabled("#set-digest-trades")
    await page.click("#set-digest-points")
    await wait_saved(page)
    saved = await saved_settings(page)
    assert saved["topics"] == {
        "trades": False,
        "points": True,
        "referrals": True,
        "alerts": True,
        "signals": False,
        "wallet": True,
    }
    assert saved["digest"] == {"trades": False, "points": True, "referrals": False}

    await page.reload()  # the hash keeps the Settings view
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)
    assert not await page.is_checked("#set-topic-trades")
    assert await page.is_checked("#set-digest-points")
    assert await page.is_checked("#set-topic-alerts")
    assert errors == []
    await page.close()


async def test_settings_quiet_hours_time_zone_and_language_persist(
    browser: Browser, server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_settings(page, server)
    assert await page.is_disabled("#set-quiet-start")
    await page.click("#set-quiet")
    await wait_saved(page)
    assert (await saved_settings(page))["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    await page.fill("#set-quiet-start", "23:30")
    await page.fill("#set-quiet-end", "06:15")
    await wait_saved(page)
    await page.fill("#set-tz", "Europe/Moscow")
    await page.press("#set-tz", "Enter")
    await wait_saved(page)
    await page.select_option("#set-language", "ru")
    await wait_saved(page)
    saved = await saved_settings(page)
    assert saved["quiet_hours"] == {"start": "23:30", "end": "06:15"}
    assert (saved["time_zone"], saved["language"]) == ("Europe/Moscow", "ru")

    await page.reload()
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)
    assert await page.is_checked("#set-quiet")
    assert await page.input_value("#set-quiet-start") == "23:30"
    assert await page.input_value("#set-quiet-end") == "06:15"
    assert await page.input_value("#set-tz") == "Europe/Moscow"
    assert "Times are in Europe/Moscow" in await page.inner_text("#set-quiet-hint")
    assert await page.input_value("#set-language") == "ru"

    # Off again: the times stay on screen for next time, the API holds none.
    await page.click("#set-quiet")
    await wait_saved(page)
    assert await page.is_disabled("#set-quiet-end")
    assert (await saved_settings(page))["quiet_hours"] is None
    await page.select_option("#set-language", "")
    await wait_saved(page)
    assert (await saved_settings(page))["language"] is None
    assert errors == []
    await page.close()


async def test_settings_refused_changes_show_the_detail_and_keep_the_old_value(
    browser: Browser, server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_settings(page, server)
    await page.fill("#set-tz", "Mars/Olympus_Mons")
    await page.press("#set-tz", "Enter")
    await page.wait_for_selector("#set-notify-error:has-text('unknown time zone')", timeout=5_000)
    await page.wait_for_function("() => document.getElementById('set-tz').value === 'UTC'")
    assert (await saved_settings(page))["time_zone"] == "UTC"

    # Quiet hours that start and end together are refused; the saved ones stay.
    await page.click("#set-quiet")
    await wait_saved(page)
    assert await page.inner_text("#set-notify-error") == ""
    await page.fill("#set-quiet-end", "22:00")
    await page.wait_for_selector("#set-notify-error:has-text('start and end')", timeout=5_000)
    await page.wait_for_function("() => document.getElementById('set-quiet-end').value === '07:00'")
    assert (await saved_settings(page))["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert errors == []
    await page.close()


async def test_settings_offers_the_device_time_zone_without_applying_it(
    browser: Browser, server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None, timezone_id="Asia/Tokyo")
    await open_settings(page, server)
    assert await page.inner_text("#set-tz-device") == "Use Asia/Tokyo"
    assert (await saved_settings(page))["time_zone"] == "UTC"
    await page.click("#set-tz-device")
    await wait_saved(page)
    assert await page.input_value("#set-tz") == "Asia/Tokyo"
    assert await page.is_hidden("#set-tz-device")
    assert (await saved_settings(page))["time_zone"] == "Asia/Tokyo"
    assert errors == []
    await page.close()


async def test_settings_tab_query_parameter_picks_the_first_view(
    browser: Browser, server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.goto(server.url + "/?tab=settings")
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)
    assert await page.is_visible("#panel-settings") and await page.is_hidden("#panel-trade")
    # Opened straight from the bot, Back goes to the first tab.
    await page.click("#settings-back")
    assert await page.is_visible("#panel-trade")

    await page.goto(server.url + "/?tab=points")
    await page.wait_for_selector("#points[data-state='ready']", timeout=10_000)
    assert await page.get_attribute("#tab-points", "aria-selected") == "true"
    assert await page.is_hidden("#panel-settings")
    # A tab chosen here (the hash) wins over the one the link named; unknown names are ignored.
    await page.goto(server.url + "/?tab=settings#wallet")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    assert await page.is_visible("#panel-wallet") and await page.is_hidden("#panel-settings")
    await page.goto(server.url + "/?tab=nope")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    assert await page.is_visible("#panel-trade")
    assert errors == []
    await page.close()


async def publish_prices(server: Server, **prices: str) -> None:
    """The `prices` state as the market feed publishes it (the test server runs no feed)."""
    markets = {
        symbol.replace("_", "-"): {"price": price, "change_24h": "0.00", "ts": 1}
        for symbol, price in prices.items()
    }
    await server.app.state.resources.hub.publish(
        "prices", "delta", {"markets": markets}, state={"markets": markets}
    )


async def test_settings_price_alerts_are_set_listed_fired_and_deleted(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    await publish_prices(server, TON_USDT="5.2000", ETH_USDT="3500.00", BNB_USDT="600.00")
    page, errors = await open_page(browser, telegram_stub=None)
    await open_settings(page, server)
    await page.wait_for_selector("#alert-current:has-text('TON-USDT is at 5.2000 now')")
    assert await page.get_attribute("#alert-price", "inputmode") == "decimal"
    assert await page.is_visible("#alert-empty")

    # Checked before it is sent.
    await page.click("#alert-submit")
    assert await page.inner_text("#alert-price-error") == "Enter a price."
    assert await page.get_attribute("#alert-price", "aria-invalid") == "true"
    await page.fill("#alert-price", "0")
    await page.click("#alert-submit")
    assert await page.inner_text("#alert-price-error") == "Enter a price above 0."
    # The API's own refusals show its detail.
    await page.fill("#alert-price", "5.2000")
    await page.click("#alert-submit")
    await page.wait_for_selector("#alert-error:has-text('pick another price')", timeout=5_000)

    await page.fill("#alert-price", "6")
    await page.click("#alert-submit")
    await page.wait_for_selector("#alert-list .alert-row", timeout=5_000)
    assert await page.input_value("#alert-price") == ""
    assert await page.inner_text("#alert-error") == ""
    row = await page.inner_text("#alert-list .alert-row")
    assert "TON-USDT" in row and "↑" in row and "6.0000" in row
    await page.fill("#alert-price", "5,1")  # a phone's decimal comma
    await page.click("#alert-submit")
    await page.wait_for_function("() => document.querySelectorAll('#alert-list li').length === 2")
    assert "↓" in await page.inner_text("#alert-list .alert-row:first-child")

    # One is crossed: the hub tells the page, which moves it to the fired ones.
    active = await page.evaluate("window.SimplRefQ.api('/api/alerts')")
    below = next(a for a in active if a["direction"] == "below")
    resources = server.app.state.resources
    watcher = AlertWatcher(resources.db, resources.hub)
    await watcher.on_prices({"TON-USDT": 51_000})
    await page.wait_for_selector("#alert-fired .is-fired", timeout=5_000)
    fired = await page.inner_text("#alert-fired .is-fired")
    assert "5.1000" in fired and "fired at 5.1000" in fired
    assert await page.locator("#alert-list li").count() == 1
    still_active = await page.evaluate("window.SimplRefQ.api('/api/alerts')")
    assert [a["direction"] for a in still_active] == ["above"] and below not in still_active
    await page.evaluate("scrollTo(0, document.body.scrollHeight)")
    await page.screenshot(path=str(screenshots / "settings-alerts-light.png"))

    delete = page.locator("#alert-list .alert-delete")
    assert await delete.get_attribute("aria-label") == "Delete alert: TON-USDT above 6.0000"
    await delete.click()
    await page.wait_for_function("() => !document.querySelector('#alert-list li')")
    assert await page.is_visible("#alert-empty")
    assert await page.evaluate("window.SimplRefQ.api('/api/alerts')") == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    assert errors == []
    await page.close()


async def test_settings_inside_telegram_follows_the_dark_theme_and_back_button(
    browser: Browser, server: Server, telegram_id: int, screenshots: Path
) -> None:
    stub = (
        telegram_stub(signed_init_data(base_fields(telegram_id)))
        + """
    window.Telegram.WebApp.BackButton = {
      visible: false, handlers: [],
      show() { this.visible = true; }, hide() { this.visible = false; },
      onClick(handler) { this.handlers.push(handler); },
    };
    """
    )
    page, errors = await open_page(browser, telegram_stub=stub)
    await page.goto(server.url + "/?tab=settings")
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)
    assert await page.get_attribute("html", "data-theme") == "dark"
    colours = await page.evaluate(
        """() => ({
          panel: getComputedStyle(document.getElementById('panel-settings')).backgroundColor,
          text: getComputedStyle(document.getElementById('set-notify-title')).color,
          on: getComputedStyle(document.getElementById('set-topic-trades')).backgroundColor,
        })"""
    )
    # Telegram's dark palette (the stub sends no colours, so the app's dark fallbacks apply).
    assert colours == {
        "panel": "rgb(33, 33, 33)",
        "text": "rgb(255, 255, 255)",
        "on": "rgb(135, 116, 225)",
    }
    assert await page.evaluate("window.Telegram.WebApp.BackButton.visible") is True
    await page.screenshot(path=str(screenshots / "settings-telegram-dark.png"), full_page=True)
    await page.evaluate("window.Telegram.WebApp.BackButton.handlers.forEach(handler => handler())")
    assert await page.is_visible("#panel-trade") and await page.is_hidden("#panel-settings")
    assert await page.evaluate("window.Telegram.WebApp.BackButton.visible") is False
    assert errors == []
    await page.close()
