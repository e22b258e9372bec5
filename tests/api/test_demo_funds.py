"""Demo funds (the faucet, the market maker's balances) follow one setting, ``demo_funds``: on
except in production, and never on there whatever the environment says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backend.config import Settings
from tests.helpers import RunningServer, make_settings, signed_in


def production(tmp_path: Path, **trading: bool) -> Settings:
    return make_settings(
        tmp_path,
        app={"env": "production"},
        bot={"webhook_secret": "w" * 40},
        database={"url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"},
        redis={"url": "redis://127.0.0.1:1/0"},
        trading=trading,
    )


def test_demo_funds_are_on_except_in_production(tmp_path: Path) -> None:
    assert make_settings(tmp_path).demo_funds
    assert not make_settings(tmp_path, trading={"demo_funds": False}).demo_funds
    assert not production(tmp_path).demo_funds
    assert not production(tmp_path, demo_funds=True).demo_funds


async def test_the_trading_service_and_the_faucet_follow_the_setting(
    tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    settings = make_settings(tmp_path, trading={"demo_funds": False})
    assert settings.trading.faucet  # the faucet's own switch says yes; demo funds say no
    async with RunningServer(settings) as server, server.client() as client:
        assert not server.app.state.resources.trading.demo
        _, auth = await signed_in(client, new_telegram_id())
        refused = await client.post("/api/faucet", headers=auth)
        assert (refused.status_code, refused.json()["error"]) == (403, "faucet_off")
