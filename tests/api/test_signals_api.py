"""The signals API over HTTP and the hub: the shapes the Signals tab is built against, the
signed-in risk answer, the 404s, and the live `signals:<MARKET>` event."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from backend.notify import preferences
from backend.signals.worker import SignalsWorker
from tests.helpers import Server, receive, signed_in, subscribe, ws_url
from tests.signals_helpers import (
    HORIZON,
    HOUR,
    MARKETS,
    NOW,
    T0,
    add_candle,
    own_server,
    seed,
    signals_for,
    train_registry,
)

SIGNAL_KEYS = {
    "market",
    "interval",
    "time",
    "horizon",
    "horizon_hours",
    "direction",
    "probability_up",
    "published",
    "reason",
    "volatility",
    "var95",
    "model_version",
    "patterns",
    # Added beside the agreed shape: where the candles came from, and the backtest's verdict.
    "source",
    "backtest_hit_rate",
    "baseline",
    "baseline_hit_rate",
}
BACKTEST_KEYS = {
    "model_version",
    "horizon",
    "trained_on",
    "points",
    "hit_rate",
    "hit_rate_ci",
    "baseline",
    "brier",
    "baseline_brier",
    "dm_p",
    "edge",
    "reason",
    "reliability",
    "equity",
}
LIVE_KEYS = {"scored", "hits", "hit_rate", "hit_rate_ci", "brier", "reliability"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
async def signals_server(
    backend: dict[str, Any], registry: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    """A server that serves ``registry``; the test drives the worker itself (not in-app)."""
    signals = {"in_app": False, "models_dir": registry}
    tmp = tmp_path_factory.mktemp("app")
    async with own_server(backend, tmp, "signals-api", signals=signals) as running:
        yield running


@pytest.fixture(scope="module")
async def worker(signals_server: Server, registry: Path) -> SignalsWorker:
    """Signals on every market at T0 - 1h, settled four hours later (when the ones at
    T0 + 3h were made): the board shows the newer, the record the settled ones."""
    resources = signals_server.app.state.resources
    worker = SignalsWorker(resources.db, resources.hub, signals_for(registry))
    await worker.refresh_models()
    made = await seed(resources.db)
    assert len(await worker.run_once(now=NOW)) == len(MARKETS)
    for k, market in enumerate(MARKETS):
        close = float(made[market.symbol].close[-1])
        for hour in range(HORIZON):
            up = 1.0 + 0.01 * (hour + 1) * (1 if k % 2 == 0 else -1)
            await add_candle(resources.db, market.symbol, T0 + hour * HOUR, close * up)
    assert len(await worker.run_once(now=T0 + HORIZON * HOUR + 60)) == len(MARKETS)
    return worker


async def test_nothing_before_the_first_signal(client: httpx.AsyncClient, telegram_id: int) -> None:
    assert (await client.get("/api/signals")).json() == []
    _, auth = await signed_in(client, telegram_id)
    missing = await client.get("/api/signals/TON-USDT", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "no_signal"
    record = (await client.get("/api/signals/TON-USDT/record")).json()
    assert record["status"] == "untrained" and record["backtest"] is None
    assert record["live"] == {
        "scored": 0,
        "hits": 0,
        "hit_rate": None,
        "hit_rate_ci": None,
        "brier": None,
        "reliability": [],
    }


async def test_the_board_has_one_signal_per_market(
    signals_server: Server, worker: SignalsWorker
) -> None:
    async with signals_server.client() as client:
        board = (await client.get("/api/signals")).json()
    assert [s["market"] for s in board] == [m.symbol for m in MARKETS]
    for signal in board:
        assert set(signal) == SIGNAL_KEYS
        assert signal["time"] == T0 + (HORIZON - 1) * HOUR
        assert (signal["interval"], signal["horizon"], signal["horizon_hours"]) == ("1h", 4, 4.0)
        assert signal["direction"] in ("up", "down") and 0 <= signal["probability_up"] <= 1
        assert signal["published"] is False and signal["reason"].startswith("no edge found")
        assert signal["volatility"] > 0 and 0 < signal["var95"] < 1
        assert signal["model_version"] == 1 and signal["source"] == "feed"
        for pattern in signal["patterns"]:
            assert set(pattern) == {"name", "signal", "hit_rate", "occurrences"}
            assert pattern["signal"] in (1, -1)


async def test_one_market_with_the_users_suggested_size(
    signals_server: Server, worker: SignalsWorker, telegram_id: int
) -> None:
    async with signals_server.client() as client:
        anonymous = await client.get("/api/signals/TON-USDT")
        assert anonymous.status_code == 401
        forged = await client.get(
            "/api/signals/TON-USDT", headers={"Authorization": "Bearer not.a.token"}
        )
        assert forged.status_code == 401
        _, auth = await signed_in(client, telegram_id)
        empty = (await client.get("/api/signals/TON-USDT", headers=auth)).json()
        assert empty["risk"]["balance"] == "0" and empty["risk"]["suggested_size"] == "0"
        assert (await client.post("/api/faucet", headers=auth)).status_code == 200
        answer = await client.get("/api/signals/ETH-USDT?risk=0.02", headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        board = {s["market"]: s for s in (await client.get("/api/signals")).json()}
        for risk, status in (("0", 400), ("0.21", 400), ("-0.01", 400), ("x", 400)):
            refused = await client.get(f"/api/signals/ETH-USDT?risk={risk}", headers=auth)
            assert refused.status_code == status, risk
        unknown = await client.get("/api/signals/DOGE-USDT", headers=auth)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_market"
    assert set(body) == {"signal", "risk"} and body["signal"] == board["ETH-USDT"]
    risk = body["risk"]
    assert set(risk) == {"volatility", "var95", "balance", "risk_fraction", "suggested_size"}
    assert risk["volatility"] == board["ETH-USDT"]["volatility"]
    assert risk["var95"] == board["ETH-USDT"]["var95"]
    assert Decimal(risk["balance"]) == 10_000 and risk["risk_fraction"] == 0.02
    # 2% of the balance lost at the 95% VaR, in whole micro-USDT, at most the balance.
    units = min(10_000 * 10**6, math.floor(0.02 * 10_000 * 10**6 / risk["var95"]))
    assert Decimal(risk["suggested_size"]) == Decimal(units) / 10**6
    assert empty["risk"]["risk_fraction"] == 0.01  # the default


async def test_the_record_sets_the_backtest_beside_the_live_one(
    signals_server: Server, worker: SignalsWorker
) -> None:
    async with signals_server.client() as client:
        record = (await client.get("/api/signals/TON-USDT/record")).json()
        unknown = await client.get("/api/signals/DOGE-USDT/record")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_market"
    assert set(record) == {"market", "status", "backtest", "live"}
    assert (record["market"], record["status"]) == ("TON-USDT", "ready")
    backtest = record["backtest"]
    assert set(backtest) == BACKTEST_KEYS
    assert backtest["model_version"] == 1 and backtest["horizon"] == HORIZON
    assert backtest["trained_on"]["market"] == "TON-USDT"
    assert set(backtest["trained_on"]) == {"market", "interval", "first", "last"}
    assert backtest["trained_on"]["first"] < backtest["trained_on"]["last"]
    assert backtest["points"] >= 100 and backtest["edge"] is False
    low, high = backtest["hit_rate_ci"]
    assert low < backtest["hit_rate"] < high
    assert set(backtest["baseline"]) == {"name", "hit_rate"}
    assert backtest["brier"] > 0 and backtest["baseline_brier"] > 0
    assert 0 <= backtest["dm_p"] <= 1
    assert backtest["reason"].startswith("no edge found")
    for point in backtest["reliability"]:
        assert set(point) == {"predicted", "observed", "count"}
    assert sum(p["count"] for p in backtest["reliability"]) == backtest["points"]
    assert 2 <= len(backtest["equity"]) <= 200
    assert set(backtest["equity"][0]) == {"i", "strategy", "buy_hold"}
    steps = [p["i"] for p in backtest["equity"]]
    assert steps == sorted(set(steps)) and steps[0] == 0
    live = record["live"]
    assert set(live) == LIVE_KEYS
    # TON rose over the horizon (see the fixture): the settled signal hit if it said "up".
    assert live["scored"] == 1 and live["hits"] in (0, 1)
    assert live["hit_rate"] == live["hits"] and len(live["hit_rate_ci"]) == 2
    assert live["brier"] is not None and live["reliability"][0]["count"] == 1


async def test_a_new_signal_is_published_on_its_topic(
    signals_server: Server, worker: SignalsWorker
) -> None:
    resources = signals_server.app.state.resources
    async with websockets.connect(ws_url(signals_server)) as ws:
        await subscribe(ws, "signals:TON-USDT")
        for market in MARKETS:
            await add_candle(resources.db, market.symbol, T0 + HORIZON * HOUR, 5.0)
        stored = await worker.run_once(now=T0 + (HORIZON + 1) * HOUR + 60)
        assert len(stored) == len(MARKETS)
        frame = await receive(ws)
    assert frame["topic"] == "signals:TON-USDT" and frame["type"] == "event"
    async with signals_server.client() as client:
        board = {s["market"]: s for s in (await client.get("/api/signals")).json()}
    assert frame["data"] == board["TON-USDT"]
    assert frame["data"]["time"] == T0 + HORIZON * HOUR


async def test_signal_messages_are_opt_in_from_the_settings(
    server: Server, client: httpx.AsyncClient, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    path = "/api/notifications/settings"
    assert (await client.get(path, headers=auth)).json()["topics"]["signals"] is False
    on = await client.patch(path, json={"topics": {"signals": True}}, headers=auth)
    assert on.status_code == 200 and on.json()["topics"]["signals"] is True
    assert on.json()["topics"]["trades"] is True  # the others stay as they were
    async with server.app.state.resources.db.reads() as session:
        assert user["id"] in await preferences.subscribers(session, "signals")
    off = await client.patch(path, json={"topics": {"signals": False}}, headers=auth)
    assert off.json()["topics"]["signals"] is False
    async with server.app.state.resources.db.reads() as session:
        assert user["id"] not in await preferences.subscribers(session, "signals")
