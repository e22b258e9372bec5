"""Operations: health, readiness, metrics, request ids, OpenAPI, static files, settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from backend.config import Settings
from tests.helpers import RunningServer, Server, make_settings

ROOT = Path(__file__).resolve().parents[2]


async def test_health_and_readiness(server: Server, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if server.settings.redis.url else {})
    assert ready.json()["checks"] == expected


async def test_readiness_reports_an_unreachable_redis(postgres_url: str, tmp_path: Path) -> None:
    broken = {"database": {"url": postgres_url}, "redis": {"url": "redis://127.0.0.1:1/0"}}
    async with (
        RunningServer(make_settings(tmp_path, **broken)) as server,
        server.client() as client,
    ):
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "ok"
        assert response.json()["checks"]["redis"].startswith("error")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/healthz")
    await client.get("/api/admin/users/12345/role")
    text = (await client.get("/metrics")).text
    assert "simplrefq_requests_total{" in text
    assert 'path="/healthz"' in text
    assert "simplrefq_request_duration_seconds_bucket" in text
    # Route templates, not raw paths, keep label cardinality bounded.
    assert "/12345/" not in text


async def test_metrics_are_refused_to_other_addresses(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, app={"metrics_allow_ips": "10.1.2.3"})
    async with RunningServer(settings) as server, server.client() as client:
        response = await client.get("/metrics")
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_openapi_documents_the_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/api/auth/telegram", "/api/me", "/api/admin/users", "/healthz"):
        assert path in schema["paths"]


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
        Settings(
            app={"env": "production"},
            database={"url": "postgresql+asyncpg://x/y"},
            redis={"url": "redis://x"},
        )
    with pytest.raises(ValueError, match="BOT_WEBHOOK_SECRET"):
        Settings(
            app={"env": "production"},
            auth={"jwt_secret": "s" * 40},
            bot={"token": "1:x"},
            database={"url": "postgresql+asyncpg://x/y"},
            redis={"url": "redis://x"},
        )
    ok = Settings(
        app={"env": "production"},
        auth={"jwt_secret": "s" * 40},
        database={"url": "postgresql+asyncpg://x/y"},
        redis={"url": "redis://x"},
    )
    assert ok.demo_login is False
    with pytest.raises(ValueError, match="RATELIMIT_ENABLED"):
        Settings(
            app={"env": "production"},
            auth={"jwt_secret": "s" * 40},
            database={"url": "postgresql+asyncpg://x/y"},
            redis={"url": "redis://x"},
            ratelimit={"enabled": False},
        )


def test_production_has_no_demo_sign_in(tmp_path: Path) -> None:
    from backend.app import create_app

    settings = Settings(
        app={"env": "production", "data_dir": tmp_path},
        auth={"jwt_secret": "s" * 40},
        database={"url": "postgresql+asyncpg://x/y"},
        redis={"url": "redis://x:6379"},
    )
    paths = {route.path for route in create_app(settings).routes}
    assert "/api/auth/demo" not in paths and "/api/auth/telegram" in paths


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/1")
    monkeypatch.setenv("RATELIMIT_SIGNIN_PER_IP", "7/second")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.redis.url == "redis://h:6379/1" and not settings.embedded
    assert settings.ratelimit.signin_per_ip == "7/second"


def test_cli_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "bot", "db", "users"):
        assert command in result.stdout


def test_cli_refuses_several_workers_on_the_embedded_default(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--workers", "2"],
        capture_output=True,
        text=True,
        env={"APP_DATA_DIR": str(tmp_path), "PATH": ""},
    )
    assert result.returncode != 0 and "several workers need" in result.stderr


def test_the_no_bot_app_starts_and_says_so(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bot={"token": ""})
    from backend.app import create_app

    app = create_app(settings)
    paths = {route.path for route in app.routes}
    assert "/bot/webhook" not in paths and "/api/auth/telegram" in paths


def test_openapi_json_is_valid_json_schema_file(tmp_path: Path) -> None:
    from backend.app import create_app

    schema = create_app(make_settings(tmp_path)).openapi_schema.to_schema()
    assert json.loads(json.dumps(schema))["info"]["title"] == "SimplRefQ API"


def test_a_malformed_chain_address_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A vault address with a digit too many must stop the start, not 500 on first use."""
    monkeypatch.setenv("CHAINS_EVM__ETHEREUM__VAULT", "0x" + "1" * 41)
    with pytest.raises(ValidationError, match="vault"):
        Settings()
    monkeypatch.setenv("CHAINS_EVM__ETHEREUM__VAULT", "0x" + "1" * 40)
    assert Settings().chains.evm["ethereum"].vault == "0x" + "1" * 40


def test_only_the_demo_trains_signal_models_in_a_serving_process(tmp_path: Path) -> None:
    """Production fills the registry with `simplrefq signals train`, never inside a worker."""
    production = {
        "database": {"url": "postgresql+asyncpg://x/y"},
        "redis": {"url": "redis://x:6379"},
    }
    wanted = {
        env: Settings(
            app={"env": env, "data_dir": tmp_path},
            auth={"jwt_secret": "s" * 40},
            **(production if env == "production" else {}),
        ).train_signal_models
        for env in ("development", "test", "production")
    }
    assert wanted == {"development": True, "test": False, "production": False}
