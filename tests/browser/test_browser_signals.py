"""The Signals tab in real headless Chromium, against the served signals API and the live hub.

The server serves tiny models trained on the simulator's random walk (tests/signals_helpers.py,
as tests/api/test_signals_api.py): they must find no edge, so the tab has to say so rather
than show a call. The tests drive the signals worker themselves, as the API tests do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from backend.db.uow import unit_of_work
from backend.signals import card, history
from backend.signals.models import CandleSource
from backend.signals.worker import SignalsWorker
from tests.helpers import Server, open_page
from tests.signals_helpers import (
    HISTORY,
    HORIZON,
    HOUR,
    MARKETS,
    NOW,
    T0,
    add_candle,
    gbm,
    own_server,
    seed,
    signals_for,
    train_registry,
    with_edge,
)

pytestmark = pytest.mark.browser

MARKET = MARKETS[0].symbol  # TON-USDT: the first button, chosen on a first visit


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
async def signals_server(
    backend: dict[str, Any], registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    signals = {"in_app": False, "models_dir": registry}
    tmp = tmp_path_factory.mktemp("app")
    async with own_server(backend, tmp, "signals-browser", signals=signals) as running:
        yield running


@pytest.fixture(scope="module")
async def worker(signals_server: Server, registry: Path) -> SignalsWorker:
    """Every market's signal at T0 - 1h, settled four candles later when the next ones are made:
    the tab shows the newer signals, and a live record of one scored call per market."""
    resources = signals_server.app.state.resources
    worker = SignalsWorker(resources.db, resources.hub, signals_for(registry))
    await worker.refresh_models()
    made = await seed(resources.db)
    assert len(await worker.run_once(now=NOW)) == len(MARKETS)
    for market in MARKETS:
        close = float(made[market.symbol].close[-1])
        for hour in range(HORIZON):
            await add_candle(
                resources.db, market.symbol, T0 + hour * HOUR, close * (1 + 0.01 * hour)
            )
    assert len(await worker.run_once(now=T0 + HORIZON * HOUR + 60)) == len(MARKETS)
    return worker


async def open_signals_tab(page: Page, server: Server) -> None:
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    await page.click("#tab-signals")
    await page.wait_for_function(
        "() => ['ready', 'empty'].includes(document.getElementById('signals').dataset.state)",
        timeout=10_000,
    )


async def following(page: Page, market: str = MARKET) -> None:
    """Until the page's socket is subscribed to the market's topic (its answer is in)."""
    await page.wait_for_function(
        """topic => {
          const entry = window.SimplRefQHub.debug().topics[topic];
          return Boolean(entry) && !entry.pending && entry.seq != null;
        }""",
        arg=f"signals:{market}",
        timeout=10_000,
    )


async def api(page: Page, path: str, method: str = "GET") -> Any:
    """The API as the page's signed-in user (the page's own token)."""
    return await page.evaluate(
        "([path, method]) => window.SimplRefQ.api(path, {method})", [path, method]
    )


def shown(amount: str) -> str:
    """A decimal string as the tab shows money: thousands apart, two places, cut."""
    value = Decimal(amount).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    return f"{value:,.2f}"


def percent(value: float, places: int = 1) -> str:
    return f"{value * 100:.{places}f}%"


async def test_the_tab_shows_no_edge_honestly_with_risk_patterns_and_record(
    browser: Browser, signals_server: Server, worker: SignalsWorker, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_signals_tab(page, signals_server)
    await page.wait_for_selector(f"#signals[data-record='{MARKET}']", timeout=10_000)
    board = {s["market"]: s for s in await api(page, "/api/signals")}
    signal = board[MARKET]

    # One button per market with a signal, the first one chosen.
    buttons = await page.locator("#sig-markets [data-market]").evaluate_all(
        "nodes => nodes.map(n => [n.dataset.market, n.textContent, n.getAttribute('aria-pressed')])"
    )
    assert buttons == [[m, m.split("-")[0], "true" if m == MARKET else "false"] for m in board]

    # The tiny model has no edge: no bare "UP 54%", but the badge, a muted lean and the numbers.
    assert signal["published"] is False
    assert await page.get_attribute("#sig-call", "data-published") == "false"
    assert await page.inner_text("#sig-badge") == "No edge found"
    assert await page.locator("#sig-call .sig-dir").count() == 0
    lean = await page.inner_text("#sig-headline")
    lean_up = signal["direction"] == "up"
    probability = signal["probability_up"] if lean_up else 1 - signal["probability_up"]
    leans = f"Model leans {signal['direction']} {percent(probability, 0)}"
    assert f"{leans} over the next 4 hours" in lean
    assert "Not published as advice" in lean
    reasons = await page.locator("#sig-reason li").all_inner_texts()
    assert reasons and any("Brier" in r for r in reasons)
    assert not any(r.lower().startswith("no edge found") for r in reasons)
    assert await page.is_hidden("#sig-simulated")  # the seeded candles are the feed's
    assert (await page.inner_text("#sig-meta")).startswith(f"{MARKET} · as of the ")

    # Risk: the signal's numbers; a new demo user has no USDT, so no size yet.
    assert await page.inner_text("#sig-vol") == percent(signal["volatility"])
    assert await page.inner_text("#sig-var") == percent(signal["var95"])
    default = "#sig-risk-choice:not([hidden]) [data-risk='0.01'][aria-pressed='true']"
    await page.wait_for_selector(default)
    assert "balance is empty" in await page.inner_text("#sig-risk-text")

    # With demo funds and a 2% risk setting, the size is the server's for that setting.
    await api(page, "/api/faucet", "POST")
    await page.click("#sig-risk-choice [data-risk='0.02']")
    detail = await api(page, f"/api/signals/{MARKET}?risk=0.02")
    size = shown(detail["risk"]["suggested_size"])
    await page.wait_for_function(
        "size => document.getElementById('sig-size').textContent === size", arg=size
    )
    assert await page.inner_text("#sig-size-label") == "Position (USDT)"
    text = await page.inner_text("#sig-risk-text")
    assert text.startswith("Risking 2.0% of your 10,000.00 USDT") and "one time in twenty" in text
    assert await page.get_attribute("#sig-risk-choice [data-risk='0.02']", "aria-pressed") == "true"

    # Patterns: one row each, with a hit rate or "not enough history".
    rows = await page.locator("#sig-patterns .sig-row").all_inner_texts()
    assert len(rows) == len(signal["patterns"])
    for row, pattern in zip(rows, signal["patterns"], strict=True):
        assert ("bullish" if pattern["signal"] > 0 else "bearish") in row
        rate = pattern["hit_rate"]
        assert (f"{percent(rate, 0)} hit rate" if rate is not None else "not enough history") in row
    assert await page.is_hidden("#sig-patterns-empty") == bool(rows)

    # The record: backtest beside live, the baseline, and the charts drawn from the same numbers.
    record = await api(page, f"/api/signals/{MARKET}/record")
    backtest, live = record["backtest"], record["live"]
    table = await page.locator("#sig-table tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert table[0] == [
        "Hit rate",
        percent(live["hit_rate"]),
        percent(backtest["hit_rate"]),
        percent(backtest["baseline"]["hit_rate"]),
    ]
    assert table[3] == ["Calls", "1", f"{backtest['points']:,}", f"{backtest['points']:,}"]
    assert await page.inner_text("#sig-baseline-name") == backtest["baseline"]["name"]
    assert "No edge found out of sample" in await page.inner_text("#sig-verdict")
    dots = sum(1 for b in backtest["reliability"] if b["count"] and b["predicted"] is not None)
    assert await page.locator("#sig-reliability .sig-dot-backtest").count() == dots
    assert await page.locator("#sig-reliability .sig-dot-live").count() == len(live["reliability"])
    assert await page.locator("#sig-reliability .sig-diagonal").count() == 1
    assert await page.locator("#sig-equity path.sig-line").count() == 2
    assert (await page.inner_text("#sig-key-strategy")).startswith("Strategy ")
    assert "walk-forward on TON-USDT 1h candles" in await page.inner_text("#sig-trained")

    # Another market: its own call, record and size.
    other = MARKETS[1].symbol
    await page.click(f"#sig-markets [data-market='{other}']")
    await page.wait_for_selector(f"#signals[data-record='{other}']", timeout=5_000)
    assert (await page.inner_text("#sig-meta")).startswith(other)
    assert await page.evaluate("localStorage.getItem('simplrefq.signals.market')") == other

    # A 360-px phone: nothing sticks out sideways.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.click(f"#sig-markets [data-market='{MARKET}']")
    await page.wait_for_selector(f"#signals[data-record='{MARKET}']", timeout=5_000)
    name = signals_server.settings.database_url.split(":")[0].split("+")[0]
    await page.screenshot(path=str(screenshots / f"signals-light-{name}.png"))
    # The whole tab in one tall window, so the fixed tab bar covers nothing in the middle.
    height = await page.evaluate("document.documentElement.scrollHeight")
    await page.set_viewport_size({"width": 360, "height": height})
    await page.screenshot(path=str(screenshots / f"signals-light-{name}-full.png"))
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(path=str(screenshots / f"signals-dark-{name}-full.png"))
    assert errors == []
    await page.close()


async def test_a_new_signal_reaches_the_open_tab_through_the_hub(
    browser: Browser, signals_server: Server, worker: SignalsWorker
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_signals_tab(page, signals_server)
    await page.wait_for_selector(f"#signals[data-record='{MARKET}']", timeout=10_000)
    await following(page)
    before = int(await page.get_attribute("#sig-call", "data-time") or 0)

    # The next hour closes: the worker scores it and publishes on signals:<MARKET>.
    resources = signals_server.app.state.resources
    later = before + HOUR
    for market in MARKETS:
        await add_candle(resources.db, market.symbol, later, 5.0)
    assert len(await worker.run_once(now=later + HOUR + 60)) == len(MARKETS)
    await page.wait_for_selector(f"#sig-call[data-time='{later}']", timeout=5_000)
    board = {s["market"]: s for s in await api(page, "/api/signals")}
    assert board[MARKET]["time"] == later
    assert await page.inner_text("#sig-var") == percent(board[MARKET]["var95"])
    assert errors == []
    await page.close()


async def test_before_the_first_signal_the_tab_says_why_then_fills_in_live(
    browser: Browser, registry: Path, tmp_path: Path, screenshots: Path
) -> None:
    # A registry folder marked as training: the record says so, and so does the tab.
    training = tmp_path / "training-models"
    training.mkdir()
    card.mark_training(training, "training")
    signals = {"in_app": False, "models_dir": training}
    async with own_server({}, tmp_path / "a", "signals-training", signals=signals) as server:
        page, errors = await open_page(browser, telegram_stub=None)
        await open_signals_tab(page, server)
        assert await page.get_attribute("#signals", "data-state") == "empty"
        assert await page.inner_text("#sig-empty-title") == "The model is training"
        assert await page.is_hidden("#sig-main")
        await page.screenshot(path=str(screenshots / "signals-training.png"), full_page=True)
        assert errors == []
        await page.close()

    # Models there, no candle closed yet: the tab waits for it, then shows it as it comes.
    signals = {"in_app": False, "models_dir": registry}
    async with own_server({}, tmp_path / "b", "signals-waiting", signals=signals) as server:
        page, errors = await open_page(browser, telegram_stub=None)
        await open_signals_tab(page, server)
        assert await page.inner_text("#sig-empty-title") == "Waiting for the first hourly close"
        await following(page)
        resources = server.app.state.resources
        worker = SignalsWorker(resources.db, resources.hub, signals_for(registry))
        await worker.refresh_models()
        await seed(resources.db)
        assert len(await worker.run_once(now=NOW)) == len(MARKETS)
        await page.wait_for_selector("#signals[data-state='ready']", timeout=5_000)
        await page.wait_for_selector(f"#signals[data-record='{MARKET}']", timeout=5_000)
        assert await page.is_hidden("#sig-empty")
        assert await page.inner_text("#sig-badge") == "No edge found"
        # No call scored yet: the live column waits, the backtest is there.
        assert (await page.inner_text("#sig-live-note")).startswith("No live calls scored yet.")
        assert await page.locator("#sig-reliability .sig-dot-live").count() == 0
        assert errors == []
        await page.close()


async def test_a_model_with_an_edge_shows_its_call_on_a_simulated_history(
    browser: Browser, registry: Path, tmp_path: Path, screenshots: Path
) -> None:
    edged = with_edge(registry, tmp_path / "edge-models")
    signals = {"in_app": False, "models_dir": edged}
    async with own_server({}, tmp_path, "signals-edge", signals=signals) as server:
        resources = server.app.state.resources
        worker = SignalsWorker(resources.db, resources.hub, signals_for(edged))
        await worker.refresh_models()
        # The demo's backfill: the markets' histories made up by the simulator.
        async with unit_of_work(resources.db) as uow:
            for k, market in enumerate(MARKETS):
                made = gbm(market, HISTORY, seed=k)
                await history.import_candles(uow, market.symbol, "1h", made, CandleSource.SIMULATOR)
        assert len(await worker.run_once(now=NOW)) == len(MARKETS)
        page, errors = await open_page(browser, telegram_stub=None)
        await open_signals_tab(page, server)
        await page.wait_for_selector(f"#signals[data-record='{MARKET}']", timeout=10_000)
        signal = {s["market"]: s for s in await api(page, "/api/signals")}[MARKET]
        assert signal["published"] is True
        assert await page.get_attribute("#sig-call", "data-published") == "true"
        assert await page.inner_text("#sig-badge") == "Edge found"
        direction, up = signal["direction"], signal["probability_up"]
        probability = up if direction == "up" else 1 - up
        call = await page.inner_text("#sig-call .sig-dir")
        assert call.endswith(f"{direction.upper()} {percent(probability, 0)}")
        verb = "rise" if direction == "up" else "fall"
        assert f"chance of a {verb} over the next 4 hours" in await page.inner_text("#sig-headline")
        assert "Not published" not in await page.inner_text("#sig-call")
        assert await page.locator("#sig-reason li").all_inner_texts() == ["A test says so"]
        assert signal["source"] == "simulator"
        assert await page.inner_text("#sig-simulated") == "Simulated market history"
        assert "TON-USDT's own history here is simulated" in await page.inner_text("#sig-trained")
        await page.screenshot(path=str(screenshots / "signals-edge.png"))
        assert errors == []
        await page.close()
