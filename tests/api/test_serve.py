"""`simplrefq serve`, the production server command, run as a newcomer would run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_migrates_serves_and_logs_json_lines_with_the_request_id(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "APP_DATA_DIR": str(tmp_path), "APP_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/readyz", headers={"X-Request-ID": "probe-42"}
                )
                with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
    finally:
        server.terminate()
        stdout, stderr = server.communicate(timeout=15)

    assert f"open http://127.0.0.1:{port}/" in stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert lines, stdout
    access = [line for line in lines if line.get("request_id") == "probe-42"]
    assert access and access[0]["event"] == "request"
    assert access[0]["path"] == "/readyz" and access[0]["status"] == 200
    assert any(line.get("event") == "started" and line["database"] == "sqlite" for line in lines)
    assert (tmp_path / "simplrefq.db").exists()
