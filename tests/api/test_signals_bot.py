"""/signals in the bot against the fake Bot API: the same calls, risks and verdicts as
``GET /api/signals``, in the user's language, beside the market prices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backend.signals.worker import SignalsWorker
from backend.testing.fake_bot_api import FakeBotAPI, message_update
from tests.helpers import WEBHOOK_SECRET, Server, reply_to
from tests.signals_helpers import MARKETS, NOW, own_server, seed, signals_for, train_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture
async def signals_bot(
    backend: dict[str, Any], tmp_path: Path, telegram: FakeBotAPI, registry: Path
) -> AsyncIterator[Server]:
    bot = {"api_server": telegram.url, "webhook_secret": WEBHOOK_SECRET}
    signals = {"in_app": False, "models_dir": registry}
    async with own_server(backend, tmp_path, "signals-bot", bot=bot, signals=signals) as server:
        yield server


def percent(value: float, places: int) -> str:
    return f"{value:.{places}%}"


async def test_signals_shows_what_the_api_says(
    signals_bot: Server, telegram: FakeBotAPI, registry: Path, new_telegram_id: Any
) -> None:
    resources = signals_bot.app.state.resources
    empty = await reply_to(
        signals_bot, telegram, message_update(980_001, new_telegram_id(), "/signals")
    )
    assert "No AI signals yet" in empty.params["text"]

    await seed(resources.db)
    worker = SignalsWorker(resources.db, resources.hub, signals_for(registry))
    await worker.refresh_models()
    assert len(await worker.run_once(now=NOW)) == len(MARKETS)
    quotes = {"TON-USDT": {"price": "5.4321", "change_24h": "1.25", "ts": 1}}
    await resources.hub.publish("prices", "delta", {"markets": quotes}, state={"markets": quotes})
    async with signals_bot.client() as client:
        board = (await client.get("/api/signals")).json()
    assert len(board) == len(MARKETS)

    reply = await reply_to(
        signals_bot, telegram, message_update(980_002, new_telegram_id(), "/signals")
    )
    text = reply.params["text"]
    assert "TON-USDT: <b>5.4321</b> (+1.25% 24h)" in text  # the prices stay
    assert "<b>AI signals</b>, 4 h ahead" in text
    for signal in board:
        up = signal["direction"] == "up"
        chance = signal["probability_up"] if up else 1 - signal["probability_up"]
        arrow = "⬆️ up" if up else "⬇️ down"
        assert f"<b>{signal['market']}</b>: {arrow}, {percent(chance, 1)}" in text
        volatility, var = percent(signal["volatility"], 2), percent(signal["var95"], 2)
        assert f"Volatility {volatility}, 95% VaR {var}" in text
        verdict = (
            f"No edge found: hit rate {percent(signal['backtest_hit_rate'], 1)} vs "
            f"{percent(signal['baseline_hit_rate'], 1)} for {signal['baseline']}"
        )
        assert verdict in text
    assert "web_app" in reply.params["reply_markup"]["inline_keyboard"][0][0]

    russian = await reply_to(
        signals_bot,
        telegram,
        message_update(980_003, new_telegram_id(), "/signals", language="ru"),
    )
    assert "<b>ИИ-сигналы</b> на 4 ч вперёд" in russian.params["text"]
    assert "Преимущество не найдено: точность" in russian.params["text"]
