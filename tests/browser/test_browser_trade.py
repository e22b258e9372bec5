"""The Trade tab in real headless Chromium, against the served trading API and the live hub."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from backend.testing.telegram import base_fields, signed_init_data
from tests.helpers import Server, open_page, signed_in, telegram_stub

pytestmark = pytest.mark.browser

MARKET = "TON-USDT"


# What POST /api/faucet tops a demo balance up to, as the form shows it.
FULL_USDT = "10000.00 USDT"


async def market(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/api/markets")
    assert response.status_code == 200, response.text
    return next(m for m in response.json() if m["symbol"] == MARKET)


async def best(http: httpx.AsyncClient) -> tuple[Decimal | None, Decimal | None]:
    """The best bid and ask the API reports now."""
    response = await http.get(f"/api/markets/{MARKET}/book", params={"depth": 1})
    assert response.status_code == 200, response.text
    book = response.json()
    bid = Decimal(book["bids"][0][0]) if book["bids"] else None
    ask = Decimal(book["asks"][0][0]) if book["asks"] else None
    return bid, ask


def inside_ask(bid: Decimal | None, ask: Decimal | None, tick: Decimal) -> Decimal:
    """A sell price that becomes the best ask without crossing the bids."""
    price = ask - tick if ask is not None else (bid or Decimal("5")) + 100 * tick
    assert bid is None or price > bid, "no room inside the spread"
    return price


async def trader(http: httpx.AsyncClient, telegram_id: int) -> dict[str, str]:
    """Another user with demo funds, who rests orders through the API."""
    _, headers = await signed_in(http, telegram_id)
    response = await http.post("/api/faucet", headers=headers)
    assert response.status_code == 200, response.text
    return headers


async def faucet(page: Page) -> None:
    """The page's own user takes demo funds (the form's button, as a user would)."""
    await page.click("#trd-faucet")
    await page.wait_for_selector(f"#trd-available:has-text('{FULL_USDT}')", timeout=5_000)


async def place(http: httpx.AsyncClient, headers: dict[str, str], **order: Any) -> dict[str, Any]:
    body = {"market": MARKET, "type": "limit", "client_order_id": uuid.uuid4().hex, **order}
    response = await http.post("/api/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


async def open_trade_tab(page: Page, server: Server) -> None:
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    await page.wait_for_selector("#trade[data-state='ready']", timeout=10_000)
    await page.wait_for_selector(f"#trd-markets [data-market='{MARKET}'][aria-pressed='true']")


async def wait_best_ask(page: Page, price: Decimal) -> None:
    """Until the ladder's best ask is at ``price`` (it comes over the hub)."""
    await page.wait_for_function(
        "p => document.querySelector('#trd-asks li:last-child button')?.dataset.price === p",
        arg=str(price),
        timeout=5_000,
    )


async def best_ask_row(page: Page) -> str:
    """The ladder's best ask: the last row above the spread."""
    return await page.inner_text("#trd-asks li:last-child")


async def test_trade_tab_fits_a_360px_phone(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    assert await page.is_visible("#panel-trade")
    # Whatever the trading API answers, the tab settles and nothing sticks out sideways.
    await page.wait_for_selector(
        "#trade:is([data-state='ready'], [data-state='unavailable'])", timeout=10_000
    )
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(screenshots / "trade-light.png"), full_page=True)
    # The other tabs work as before.
    await page.click("#tab-points")
    await page.wait_for_selector("#points[data-state='ready']", timeout=10_000)
    assert errors == []
    await page.close()


async def test_trade_book_ladder_shows_resting_orders_live(
    browser: Browser, server: Server, new_telegram_id: Any
) -> None:
    async with server.client() as http:
        spec = await market(http)
        tick = Decimal(spec["tick_size"])
        other = await trader(http, new_telegram_id())
        bid, ask = await best(http)
        await place(http, other, side="sell", price=str(inside_ask(bid, ask, tick)), qty="2.00")
        bid, ask = await best(http)
        assert ask is not None
        buy_at = (bid + tick) if bid is not None else ask - 100 * tick
        assert buy_at < ask
        await place(http, other, side="buy", price=str(buy_at), qty="3.00")
        bid, ask = await best(http)

        page, errors = await open_page(browser, telegram_stub=None)
        await open_trade_tab(page, server)
        await page.wait_for_selector("#trd-asks li")
        await page.wait_for_selector("#trd-bids li")
        assert (await best_ask_row(page)).startswith(str(ask))
        assert (await page.inner_text("#trd-bids li:first-child")).startswith(str(bid))
        assert "3.00" in await page.inner_text("#trd-bids li:first-child")
        assert re.search(r"\d", await page.inner_text("#trd-spread"))
        # Depth bars: the outermost row holds the most, the best row the least.
        depths = await page.eval_on_selector_all(
            "#trd-bids .trd-level",
            "rows => rows.map(r => Number(r.style.getPropertyValue('--depth')))",
        )
        assert depths == sorted(depths) and 0 < depths[-1] <= 1

        # A better ask arrives over the hub: the ladder moves without a reload.
        better = inside_ask(bid, ask, tick)
        await place(http, other, side="sell", price=str(better), qty="1.50")
        await wait_best_ask(page, better)
        assert "1.50" in await best_ask_row(page)
        # Tapping a level takes its price into the form.
        await page.click("#trd-asks li:last-child button")
        assert await page.input_value("#trd-price") == str(better)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert errors == []
        await page.close()


async def test_trade_limit_order_from_the_form_rests_and_cancels(
    browser: Browser, server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_trade_tab(page, server)
    assert await page.inner_text("#trd-available") == "0.00 USDT"
    await faucet(page)
    # The hub may bring the new balance before the faucet's own answer writes the note.
    await page.wait_for_selector("#trd-form-note:has-text('10000 USDT')", timeout=5_000)
    async with server.client() as http:
        bid, _ = await best(http)
    # Far below the bids (TON trades near 5): it rests.
    price = "1.0000"
    assert bid is None or bid > Decimal(price)

    # Checked before anything is sent.
    await page.click("#trd-submit")
    assert await page.inner_text("#trd-price-error") == "Enter a price."
    assert await page.inner_text("#trd-qty-error") == "Enter an amount."
    await page.fill("#trd-price", "1.00001")
    await page.fill("#trd-qty", "2.005")
    await page.click("#trd-submit")
    assert await page.inner_text("#trd-price-error") == "The price must be a multiple of 0.0001."
    assert await page.inner_text("#trd-qty-error") == "The amount must be a multiple of 0.01 TON."
    assert await page.get_attribute("#trd-qty", "aria-invalid") == "true"
    await page.fill("#trd-price", price)
    await page.fill("#trd-qty", "0.50")
    await page.click("#trd-submit")
    assert "smallest order" in await page.inner_text("#trd-form-error")
    await page.fill("#trd-qty", "20000")
    await page.click("#trd-submit")
    assert "Not enough USDT" in await page.inner_text("#trd-form-error")
    assert await page.evaluate("window.SimplRefQ.api('/api/orders?status=all')") == []

    # 100% of the balance is an order the balance covers, fee included.
    await page.click("[data-pct='100']")
    qty = Decimal(await page.input_value("#trd-qty"))
    assert 9900 < qty * Decimal(price) * Decimal("1.002") <= 10000
    await page.fill("#trd-qty", "5.00")
    assert await page.inner_text("#trd-total") == "5.00 USDT"
    # A double tap places one order: the button is disabled while the first is on its way.
    await page.dblclick("#trd-submit")
    await page.wait_for_selector("#trd-open li", timeout=5_000)
    row = await page.inner_text("#trd-open li")
    assert "5.00 TON @ " + price in row and MARKET in row
    orders = await page.evaluate("window.SimplRefQ.api('/api/orders?status=open')")
    assert len(orders) == 1 and orders[0]["client_order_id"]
    assert await page.input_value("#trd-qty") == ""
    await page.wait_for_function(
        "full => document.getElementById('trd-available').textContent !== full",
        arg=FULL_USDT,
        timeout=5_000,
    )

    cancel = page.locator("#trd-open .trd-cancel")
    assert await cancel.get_attribute("aria-label") == f"Cancel buy 5.00 TON @ {price}"
    await cancel.click()
    await page.wait_for_function("() => !document.querySelector('#trd-open li')", timeout=5_000)
    assert await page.is_visible("#trd-open-empty")
    cancelled = await page.evaluate(
        f"window.SimplRefQ.api('/api/orders?status=closed&market={MARKET}')"
    )
    assert [o["status"] for o in cancelled] == ["cancelled"]
    # What the order held comes back.
    await page.wait_for_selector(f"#trd-available:has-text('{FULL_USDT}')", timeout=5_000)
    assert errors == []
    await page.close()


async def test_trade_crossing_order_fills_and_shows_in_my_trades(
    browser: Browser, server: Server, telegram_id: int, new_telegram_id: Any, screenshots: Path
) -> None:
    stub = (
        telegram_stub(signed_init_data(base_fields(telegram_id)))
        + """
    window.Telegram.WebApp.HapticFeedback.notificationOccurred = (kind) => {
      (window.__tg.notified ||= []).push(kind);
    };
    """
    )
    async with server.client() as http:
        spec = await market(http)
        other = await trader(http, new_telegram_id())
        bid, ask = await best(http)
        price = inside_ask(bid, ask, Decimal(spec["tick_size"]))
        await place(http, other, side="sell", price=str(price), qty="1.00")

    page, errors = await open_page(browser, telegram_stub=stub)
    await open_trade_tab(page, server)
    assert await page.get_attribute("html", "data-theme") == "dark"
    await page.evaluate("window.SimplRefQ.api('/api/faucet', {method: 'POST'})")
    # The balance event reaches the form through the hub.
    await page.wait_for_selector(f"#trd-available:has-text('{FULL_USDT}')", timeout=5_000)
    await wait_best_ask(page, price)

    await page.click("#trd-asks li:last-child button")
    await page.fill("#trd-qty", "1.00")
    await page.click("#trd-submit")
    # The fill comes back over the hub: My trades, a buzz, the tape, the balance.
    await page.wait_for_selector("#trd-mine li", timeout=5_000)
    fill = await page.inner_text("#trd-mine li")
    assert f"1.00 TON @ {price}" in fill and "taker" in fill and MARKET in fill
    await page.wait_for_function("() => window.__tg.notified?.includes('success')", timeout=5_000)
    assert "bought" in (await page.inner_text("#trd-form-note")).lower()
    await page.wait_for_selector(f"#trd-trades li:has-text('{price}')", timeout=5_000)
    assert await page.inner_text("#trd-last") == str(price)
    await page.wait_for_function(
        "full => document.getElementById('trd-available').textContent !== full",
        arg=FULL_USDT,
        timeout=5_000,
    )
    assert await page.is_visible("#trd-open-empty")
    mine = await page.evaluate("window.SimplRefQ.api('/api/trades?limit=5')")
    assert mine["trades"][0]["price"] == str(price) and mine["trades"][0]["liquidity"] == "taker"

    # The chart drew, and the page fits the phone in the dark theme too.
    assert await page.locator("#trd-chart canvas").count() > 0
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(screenshots / "trade-telegram-dark.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_trade_my_trades_pages_with_load_more(
    browser: Browser, server: Server, new_telegram_id: Any
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_trade_tab(page, server)
    async with server.client() as http:
        spec = await market(http)
        tick = Decimal(spec["tick_size"])
        other = await trader(http, new_telegram_id())
        await page.evaluate("window.SimplRefQ.api('/api/faucet', {method: 'POST'})")
        # The page's user sells 22 times into bids the other user rests just above the rest.
        token = await page.evaluate("window.SimplRefQ.token()")
        mine = {"Authorization": f"Bearer {token}"}
        for _ in range(22):
            # A new best bid of its own, so each sell fills once, against it.
            bid, ask = await best(http)
            price = bid + tick if bid is not None else (ask or Decimal("6")) - 100 * tick
            assert ask is None or price < ask
            await place(http, other, side="buy", price=str(price), qty="1.00")
            filled = await place(http, mine, side="sell", price=str(price), qty="1.00")
            assert filled["status"] == "filled", filled
    await page.reload()
    await page.wait_for_selector("#trade[data-state='ready']", timeout=10_000)
    assert await page.locator("#trd-mine li").count() == 20
    await page.click("#trd-mine-more")
    await page.wait_for_function("() => document.querySelectorAll('#trd-mine li').length === 22")
    assert await page.is_hidden("#trd-mine-more")
    assert errors == []
    await page.close()
