"""docker-compose.yml is valid (no Docker engine runs here, so the stack is not started)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("docker-compose is not installed (scripts/test.sh installs it)")
        pytest.skip("docker-compose is not installed")
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        check=False,
    )


def test_compose_file_is_valid_and_wires_the_stack() -> None:
    result = compose("config", env={"AUTH_JWT_SECRET": "x" * 40})
    assert result.returncode == 0, result.stderr
    for service in ("postgres:", "redis:", "app:", "bot:"):
        assert service in result.stdout
    assert "postgresql+asyncpg://simplrefq:" in result.stdout
    assert "APP_ENV: production" in result.stdout


def test_the_chains_settings_reach_the_app() -> None:
    vault = "0x" + "ab" * 20
    env = {"AUTH_JWT_SECRET": "x" * 40, "CHAINS_EVM__BNB__VAULT": vault}
    result = compose("config", env=env)
    assert result.returncode == 0, result.stderr
    assert f"CHAINS_EVM__BNB__VAULT: '{vault}'" in result.stdout
    assert "CHAINS_OPERATOR_KEY: ''" in result.stdout  # empty unless given: never in the file


def test_compose_refuses_to_run_without_a_jwt_secret() -> None:
    result = compose("config", "-q", env={})
    assert result.returncode != 0
    assert "AUTH_JWT_SECRET" in result.stderr
