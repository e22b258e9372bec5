"""HTTP benchmark of the shell page and the sign-in endpoint, served by `simplrefq serve`.

Starts the production server command (uvicorn, several workers, PostgreSQL + Redis) in its own
process group, drives it with wrk (a C load generator, so the client costs little of the two
cores), and prints requests/s and latency percentiles.  Also prints the gzipped size of the JS
and CSS the page ships.

    .venv/bin/python bench/http_bench.py [--workers 2] [--seconds 10] [--connections 64]

Needs wrk (`apt-get install wrk`), PostgreSQL and Redis on loopback (see README).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from backend.testing.load import parse_wrk, sign_in_all
from backend.testing.scratch import REDIS_URL, create_database, drop_database, wait_ready
from backend.testing.telegram import BOT_TOKEN, base_fields, signed_init_data

ROOT = Path(__file__).resolve().parent.parent

# Distinct users, so sign-ins spread over rows as real traffic does instead of queueing on one.
SIGN_IN_USERS = 5000

WRK_POST_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  local headers = {["Content-Type"] = "application/json"}
  return wrk.format("POST", "/api/auth/telegram", headers, bodies[i])
end
"""

# Single ledger transfers through the API: each request a points grant with its own
# idempotency key, to a user picked in turn (the admin cannot grant to themselves).
WRK_GRANT_SCRIPT = """
local ids = {%s}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local i = 0
request = function()
  i = i + 1
  local body = string.format(
    '{"user_id":%%d,"amount":1,"note":"bench","idempotency_key":"%s-%%d-%%d"}',
    ids[i %% #ids + 1], tid, i)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %s"}
  return wrk.format("POST", "/api/admin/points/grant", headers, body)
end
"""


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        url,
    ]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(result.stdout)


def sign_in_script(folder: Path, name: str, first_id: int) -> Path:
    """wrk script cycling through SIGN_IN_USERS signed bodies (distinct users)."""
    bodies = folder / f"{name}.txt"
    with bodies.open("w") as out:
        for i in range(SIGN_IN_USERS):
            init_data = signed_init_data(base_fields(first_id + i))
            out.write(json.dumps({"init_data": init_data}) + "\n")
    script = folder / f"{name}.lua"
    script.write_text(WRK_POST_SCRIPT % bodies)
    return script


def grant_script(
    folder: Path, env: dict[str, str], signed: list[dict[str, Any]], sign_in_again: Any
) -> Path:
    """Make the first signed-in user an admin; a wrk script granting points to the others.
    The role change ends the admin's sessions, so ``sign_in_again()`` brings a new token."""
    admin = signed[0]["user"]
    subprocess.run(
        [
            str(ROOT / ".venv/bin/simplrefq"),
            "users",
            "set-role",
            str(admin["telegram_id"]),
            "admin",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    token = sign_in_again()[0]["token"]
    ids = ",".join(str(answer["user"]["id"]) for answer in signed[1:])
    script = folder / "grant.lua"
    script.write_text(WRK_GRANT_SCRIPT % (ids, uuid.uuid4().hex[:8], token))
    return script


def report(name: str, figures: dict[str, float], target: str) -> None:
    print(
        f"{name:26s} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
        f"p99 {figures['p99_ms']:6.2f} ms  non-2xx {figures['non_2xx']:.0f}   ({target})"
    )


def shipped_assets(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/") as response:  # noqa: S310
        html = response.read().decode()
    sizes = {}
    for path in re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css)[^"]*)"', html):
        with urllib.request.urlopen(f"{base}{path}") as response:  # noqa: S310
            sizes[path.split("?")[0]] = len(gzip.compress(response.read(), compresslevel=6))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    db_name, db_url = asyncio.run(create_database())
    base = f"http://127.0.0.1:{args.port}"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "APP_PORT": str(args.port),
        "APP_WORKERS": str(args.workers),
        # An empty model registry would train the signal models at start (a minute of CPU and
        # torch's memory in one worker): measured here is the serving, not that.
        "SIGNALS_ENABLED": "false",
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "AUTH_JWT_SECRET": uuid.uuid4().hex * 2,
        "AUTH_TELEGRAM_PUBLIC_KEY": "00" * 32,
        "BOT_TOKEN": BOT_TOKEN,
        "BOT_WEBHOOK_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        # One loopback address sends everything: the per-address sign-in limit would stop the
        # benchmark, so it is raised, but every request is still counted in Redis.
        "RATELIMIT_SIGNIN_PER_IP": "100000000/minute",
        "RATELIMIT_SIGNIN_PER_USER": "100000000/minute",
        "RATELIMIT_WRITE_PER_USER": "100000000/minute",
        "RATELIMIT_WRITE_PER_IP": "100000000/minute",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/simplrefq"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_ready(base, server)
        with tempfile.TemporaryDirectory() as tmp:
            returning = sign_in_script(Path(tmp), "returning", 10_000_000)
            newcomers = sign_in_script(Path(tmp), "new", 20_000_000)
            # Warm up the pools, then sign every "returning" user in once so they exist.
            wrk(base + "/", 2, args.connections)
            signed = asyncio.run(
                sign_in_all(base, (Path(tmp) / "returning.txt").read_text().splitlines())
            )
            lines = (Path(tmp) / "returning.txt").read_text().splitlines()
            grants = grant_script(
                Path(tmp), env, signed, lambda: asyncio.run(sign_in_all(base, lines[:1]))
            )
            page = wrk(base + "/", args.seconds, args.connections)
            page_alone = wrk(base + "/", args.seconds, 1)
            signin = wrk(base, args.seconds, args.connections, returning)
            # First sign-ins write a row each (a durable commit); fewer than SIGN_IN_USERS fit.
            signin_new = wrk(base, min(args.seconds, 5), args.connections, newcomers)
            granted = wrk(base, args.seconds, args.connections, grants)
        assets = shipped_assets(base)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
        asyncio.run(drop_database(db_name))

    total_kb = sum(assets.values()) / 1024
    print(
        f"machine: {os.cpu_count()} cores; server: simplrefq serve, {args.workers} workers, "
        f"PostgreSQL + Redis; wrk -t2 -c{args.connections} -d{args.seconds}s"
    )
    report("GET /", page, "target: p50 < 10 ms")
    report("GET / (1 connection)", page_alone, "server time per page")
    report("POST /api/auth/telegram", signin, "returning users; target: >= 2,000 req/s")
    report("POST /api/auth/telegram", signin_new, "first sign-ins: one insert each")
    report("POST /api/admin/points/grant", granted, "one ledger transfer + audit row each")
    for path, size in assets.items():
        print(f"  {path:40s} {size / 1024:6.1f} KB gzipped")
    print(f"JS+CSS shipped          {total_kb:.1f} KB gzipped   (target < 60 KB)")


if __name__ == "__main__":
    main()
