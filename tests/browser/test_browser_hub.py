"""The page's one live-hub socket (static/js/hub.js) in real headless Chromium: it resumes every
topic after a drop and after a server restart, with no gap and no duplicate, on one socket."""

from __future__ import annotations

import asyncio
import itertools
import socket
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from backend.hub.hub import Hub
from tests.helpers import RunningServer, Server, make_settings, open_page

pytestmark = pytest.mark.browser

# Counts the page's real sockets: every one the page opens, and which are still open.
COUNT_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""
# The test's own listeners, through the page's hub module as a tab would subscribe.
LISTEN = """
topics => {
  window.__seen ||= {};
  window.__resynced ||= [];
  for (const topic of topics) {
    window.__seen[topic] = [];
    window.SimplRefQHub.subscribe(topic, {
      frame: (f) => window.__seen[topic].push([f.seq, f.type]),
      resynced: (info) => {
        window.__resynced.push(info.topic);
        window.__seen[topic].push([info.seq, "resync"]);
      },
    });
  }
}
"""
OPEN_SOCKETS = "window.__sockets.filter(s => s.readyState <= 1).length"
# A restarting server refuses connections for a moment; Chromium logs each refusal.
EXPECTED_NOISE = ("WebSocket connection to",)


async def listen(page: Page, topics: list[str]) -> None:
    """Subscribe the test's listeners, and wait until the hub has answered for each."""
    await page.evaluate(LISTEN, topics)
    await page.wait_for_function(
        "ts => ts.every(t => !window.SimplRefQHub.debug().topics[t].pending)",
        arg=topics,
        timeout=5_000,
    )


def hub_of(server: Server) -> Hub:
    hub: Hub = server.app.state.resources.hub
    return hub


async def start_page(browser: Browser, server: Server) -> tuple[Page, list[str]]:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.add_init_script(COUNT_SOCKETS)
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    await page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)
    return page, errors


async def publish(server: Server, topic: str, n: int) -> None:
    """An event and a ``prices`` state frame, as the market feed and the trading desk send."""
    markets = {"TON-USDT": {"price": f"5.{n:04d}", "change_24h": "0.00", "ts": n}}
    await hub_of(server).publish(topic, "event", {"n": n})
    await hub_of(server).publish(
        "prices", "delta", {"markets": markets}, state={"markets": markets}
    )


async def seen(page: Page, topic: str) -> list[list[Any]]:
    frames: list[list[Any]] = await page.evaluate("t => window.__seen[t]", topic)
    return frames


async def wait_seen(page: Page, topic: str, count: int) -> None:
    try:
        await page.wait_for_function(
            "([t, n]) => window.__seen[t].length >= n", arg=[topic, count], timeout=15_000
        )
    except PlaywrightTimeout:
        # What the page took, for the failure report.
        print(await page.evaluate("JSON.stringify([window.__seen, window.SimplRefQHub.debug()])"))
        raise


def assert_no_gap(frames: list[list[Any]]) -> None:
    """Each seq is the one after the last, except where the topic starts over (a resync, or
    a snapshot, which a late listener on a state topic also gets)."""
    for (before, _), (after, kind) in itertools.pairwise(frames):
        if kind not in ("snapshot", "resync"):
            assert after == before + 1, frames


def event_seqs(frames: list[list[Any]]) -> list[int]:
    return [seq for seq, kind in frames if kind == "event"]


async def assert_page_logs_have_no_gap(page: Page) -> None:
    """The same for every topic the page follows (the tabs' and the ticker's), from debug()."""
    topics = (await page.evaluate("window.SimplRefQHub.debug()"))["topics"]
    for name, topic in topics.items():
        log = topic["log"]  # seqs taken, "s<seq>" where the topic started (over) at seq
        for before, after in itertools.pairwise(log):
            if isinstance(after, int):
                assert after == int(str(before).removeprefix("s")) + 1, (name, log)


def real_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not e.startswith(EXPECTED_NOISE)]


async def test_a_dropped_socket_resumes_every_topic_without_a_gap_on_one_socket(
    browser: Browser, server: Server, telegram_id: int
) -> None:
    topic = f"trades:H{telegram_id}-USDT"
    page, errors = await start_page(browser, server)
    await listen(page, [topic, "prices"])
    for n in range(10):
        await publish(server, topic, n)
    await wait_seen(page, topic, 5)
    # Cut mid-stream, and keep publishing while the page is away.
    await page.evaluate("window.__sockets.at(-1).close()")
    for n in range(10, 30):
        await publish(server, topic, n)
        await asyncio.sleep(0.02)
    await wait_seen(page, topic, 30)
    await page.wait_for_selector("#live-status[data-state='live']", timeout=10_000)

    assert await seen(page, topic) == [[seq, "event"] for seq in range(1, 31)]
    assert_no_gap(await seen(page, "prices"))
    await assert_page_logs_have_no_gap(page)
    # The ticker went on with the newest price, through the same socket.
    await page.wait_for_function(
        "() => document.getElementById('ticker').innerText.includes('5.0029')", timeout=5_000
    )
    assert await page.evaluate("window.__sockets.length") == 2
    assert await page.evaluate(OPEN_SOCKETS) == 1
    assert await page.evaluate("window.__resynced") == []
    # No token in any socket's address.
    assert all(
        "token" not in url for url in await page.evaluate("window.__sockets.map(s => s.url)")
    )
    assert real_errors(errors) == []
    await page.close()


async def test_every_tab_and_the_ticker_share_one_socket(browser: Browser, server: Server) -> None:
    page, errors = await start_page(browser, server)
    await page.click("#tab-points")
    await page.wait_for_selector("#points[data-state='ready']", timeout=10_000)
    await page.click("#open-settings")
    await page.wait_for_selector("#settings[data-state='ready']", timeout=10_000)
    user_id = await page.evaluate("window.SimplRefQ.user().id")
    await page.wait_for_function(
        "id => ['leaderboard', 'prices', `user:${id}`].every("
        "t => window.SimplRefQHub.debug().topics[t]?.seq != null)",
        arg=user_id,
        timeout=10_000,
    )
    # Telegram's "activated" (and a ping on showing again) may replace it, never add one.
    assert await page.evaluate("window.__sockets.length") == 1
    assert await page.evaluate(OPEN_SOCKETS) == 1
    assert real_errors(errors) == []
    await page.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_server_restart_resumes_or_resyncs_by_the_backend(
    browser: Browser, backend: dict[str, Any], tmp_path: Path, telegram_id: int
) -> None:
    """PostgreSQL + Redis keep the seq and history over a restart: the page resumes. The
    embedded hub starts a new epoch: the page starts over from the snapshot, and says so."""
    durable = bool(backend)
    settings = make_settings(tmp_path, **backend)
    port = free_port()
    topic = f"trades:R{telegram_id}-USDT"
    async with RunningServer(settings, port=port) as server:
        page, errors = await start_page(browser, server)
        await listen(page, [topic, "prices"])
        for n in range(5):
            await publish(server, topic, n)
        await wait_seen(page, topic, 5)
    await page.wait_for_selector("#live-status[data-state='reconnecting']", timeout=10_000)

    async with RunningServer(settings, port=port) as server:
        if durable:
            # Published before the page is back: it gets them as the frames it missed.
            for n in range(5, 10):
                await publish(server, topic, n)
            await wait_seen(page, topic, 10)
            await page.wait_for_selector("#live-status[data-state='live']", timeout=15_000)
            assert await seen(page, topic) == [[seq, "event"] for seq in range(1, 11)]
            assert await page.evaluate("window.__resynced") == []
        else:
            await page.wait_for_selector("#live-status[data-state='resynced']", timeout=15_000)
            assert topic in await page.evaluate("window.__resynced")
            for n in range(5, 10):
                await publish(server, topic, n)
            await wait_seen(page, topic, 11)
            # The new epoch numbers afresh; from the resync on there is no gap either.
            assert (await seen(page, topic))[5:] == [[0, "resync"]] + [
                [seq, "event"] for seq in range(1, 6)
            ]
        assert_no_gap(await seen(page, "prices"))
        await assert_page_logs_have_no_gap(page)
        await page.wait_for_function(
            "() => document.getElementById('ticker').innerText.includes('5.0009')",
            timeout=5_000,
        )
        assert await page.evaluate(OPEN_SOCKETS) == 1
        assert real_errors(errors) == []
        await page.close()
