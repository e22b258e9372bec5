"""Order entry over HTTP: `POST /api/orders` against `simplrefq serve` on PostgreSQL + Redis.

Makes a scratch database with --users users, funds each through the ledger (out of
`sys:faucet`, before the server starts), starts the production server command in its own
process group (market maker and price feed off, so only these orders are in the book), signs
the users in, seeds a resting book around 5.2000 TON-USDT, then drives `POST /api/orders` with
wrk: mostly GTC limit orders within a few ticks of 5.2000 on both sides (some cross, most
rest), and IOC orders that sweep the top of the book, so the book stays bounded.  Prints
accepted orders/s (HTTP 201), all requests/s, every status, latency percentiles, the trades
made, and `simplrefq ledger verify` afterwards.

    .venv/bin/python bench/order_bench.py [--workers 2] [--seconds 10] [--connections 64]
        [--users 200] [--compare-workers]

Needs wrk (`apt-get install wrk`), PostgreSQL and Redis on loopback (see README).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import redis

from backend.config import Settings
from backend.db.engine import Database
from backend.db.migrate import upgrade_async
from backend.ledger.assets import ASSETS
from backend.ledger.domain import TransferRequest, system_account, user_account
from backend.ledger.service import Ledger
from backend.testing.load import parse_wrk, sign_in_all
from backend.testing.scratch import (
    REDIS_URL,
    create_database,
    drop_database,
    insert_users,
    wait_ready,
)
from backend.testing.telegram import BOT_TOKEN, base_fields, signed_init_data
from backend.trading.service import FAUCET, FAUCET_LEVELS

ROOT = Path(__file__).resolve().parent.parent

MARKET = "TON-USDT"
MID = 52_000  # 5.2000 in ticks of 0.0001: the simulator's start price
FIRST_TELEGRAM_ID = 40_000_000
# A few hundred resting orders: a book with some depth, as a live market has.
SEED_ORDERS = 300
# Share of GTC limit orders; the rest are IOC orders sweeping SWEEP ticks through the book.
# With qty 1-20 on both, this share keeps the resting book roughly level over a run.
GTC_SHARE = 0.6
SWEEP = 6
TARGETS = ">= 3,000 accepted orders/s, p99 < 50 ms"

WRK_ORDER_SCRIPT = """
local tokens = {%(tokens)s}
local nthreads = 0
local threads = {}
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(tid * 7919 + os.time())
  counts = {}
end
local i = 0
local fmt = '{"market":"%(market)s","side":"%%s","type":"limit","price":"%%d.%%04d",' ..
  '"qty":"%%d.%%02d","tif":"%%s","post_only":false,"client_order_id":"%(tag)s-%%d-%%d"}'
request = function()
  i = i + 1
  local buy = math.random() < 0.5
  local tif, off = "GTC", math.random(-1, 4)  -- ticks from the mid, away on the own side
  if math.random() >= %(gtc)s then tif, off = "IOC", -%(sweep)d end
  local price = buy and %(mid)d - off or %(mid)d + off
  local lots = math.random(100, 2000)  -- 1.00 to 20.00 TON
  local body = string.format(fmt, buy and "buy" or "sell", math.floor(price / 10000),
    price %% 10000, math.floor(lots / 100), lots %% 100, tif, tid, i)
  local headers = {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}
  return wrk.format("POST", "/api/orders", headers, body)
end
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("STATUS %%d %%d\\n", status, n)) end
end
"""


@dataclass
class Result:
    workers: int
    figures: dict[str, float]
    statuses: dict[int, int]
    socket_errors: str
    trades: int
    resting_before: int
    resting_after: int
    fates: dict[str, int]
    verify: str
    log_problems: list[str]

    @property
    def accepted_per_s(self) -> float:
        total = sum(self.statuses.values())
        return self.figures["rps"] * self.statuses.get(201, 0) / total if total else 0.0


async def prepare(url: str, users: int) -> None:
    """Migrate, add the users, and credit each from the faucet at its demo levels."""
    settings = Settings(
        app={"env": "test", "data_dir": Path(tempfile.gettempdir())},
        database={"url": url},
        log={"level": "WARNING"},
    )
    await upgrade_async(settings)
    ids = await insert_users(url, users, FIRST_TELEGRAM_ID)
    db = Database.connect(settings)
    try:
        ledger = Ledger()
        moves = [
            TransferRequest(
                f"bench:{uid}:{code}",
                FAUCET,
                ASSETS[code].to_units(FAUCET_LEVELS[code]),
                system_account(FAUCET, code),
                user_account(uid, code),
                code,
            )
            for uid in ids
            for code in ("USDT", "TON")
        ]
        for start in range(0, len(moves), 500):
            submitted = await ledger.submit_batch(db, moves[start : start + 500])
            assert all(outcome.ok for outcome in submitted.outcomes), submitted.outcomes
    finally:
        await db.dispose()


def price_str(ticks: int) -> str:
    return f"{ticks // 10_000}.{ticks % 10_000:04d}"


async def seed_book(base: str, tokens: list[str]) -> None:
    """SEED_ORDERS resting limit orders, 1-10 ticks either side of the mid.  No keep-alive, so
    a retry after a 503 (trading starting, or a worker that does not run the books) may reach
    another worker; the client order id makes a retry safe."""
    rng = random.Random(7)
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            buy = n % 2 == 0
            off = rng.randint(1, 10)
            body = {
                "market": MARKET,
                "side": "buy" if buy else "sell",
                "type": "limit",
                "price": price_str(MID - off if buy else MID + off),
                "qty": f"{rng.randint(1, 20)}",
                "tif": "GTC",
                "post_only": True,
                "client_order_id": f"seed-{n}",
            }
            headers = {"authorization": f"Bearer {rng.choice(tokens)}"}
            async with gate:
                for _ in range(100):
                    response = await client.post("/api/orders", json=body, headers=headers)
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(0.1)
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"seed order: {response.status_code} {response.text}")

        await asyncio.gather(*(one(n) for n in range(SEED_ORDERS)))


async def book_figures(url: str) -> tuple[int, int]:
    """(trades, resting orders) in the database."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        trades = await connection.fetchval("SELECT count(*) FROM trades")
        resting = await connection.fetchval("SELECT count(*) FROM orders WHERE status = 'open'")
    finally:
        await connection.close()
    return trades, resting


async def fates(url: str, tag: str) -> dict[str, int]:
    """What became of the run's orders: "GTC open" (resting), "IOC expired" and so on."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await connection.fetch(
            "SELECT tif, status, count(*) AS n FROM orders WHERE client_order_id LIKE $1"
            " GROUP BY tif, status ORDER BY tif, status",
            f"{tag}-%",
        )
    finally:
        await connection.close()
    return {f"{row['tif']} {row['status']}": row["n"] for row in rows}


def order_script(folder: Path, tokens: list[str], tag: str) -> Path:
    script = folder / f"orders-{tag}.lua"
    script.write_text(
        WRK_ORDER_SCRIPT
        % {
            "tokens": ",".join(f'"{token}"' for token in tokens),
            "market": MARKET,
            "tag": tag,
            "gtc": GTC_SHARE,
            "sweep": SWEEP,
            "mid": MID,
        }
    )
    return script


def wrk_orders(
    base: str, seconds: int, connections: int, script: Path
) -> tuple[str, dict[int, int]]:
    command = ["wrk", "-s", str(script), f"-t{min(2, connections)}", f"-c{connections}"]
    # A long timeout: a slow answer is measured, not dropped from the latency figures.
    command += [f"-d{seconds}s", "--timeout", "30s", "--latency", base]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"^STATUS (\d+) (\d+)$", output, re.M)}
    return output, statuses


def server_env(args: argparse.Namespace, workers: int, db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ENV": "production",
        "APP_PORT": str(args.port),
        "APP_WORKERS": str(workers),
        # An empty model registry would train the signal models at start (a minute of CPU and
        # torch's memory in one worker): measured here is the serving, not that.
        "SIGNALS_ENABLED": "false",
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        # Its own prefix: another benchmark or test on the same Redis holds its own leader lease.
        "REDIS_KEY_PREFIX": f"orderbench{uuid.uuid4().hex[:8]}",
        "AUTH_JWT_SECRET": uuid.uuid4().hex * 2,
        "AUTH_TELEGRAM_PUBLIC_KEY": "00" * 32,
        "BOT_TOKEN": BOT_TOKEN,
        "BOT_WEBHOOK_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        "TRADING_MARKET_MAKER": "false",
        "MARKET_FEED": "off",
        # Telegram cannot be reached from here: the fill notices are still written to the
        # outbox in each batch's transaction, and delivered by `simplrefq worker notify`.
        "NOTIFY_IN_APP": "false",
        # One loopback address sends everything and each user places hundreds of orders a
        # second: the limits are raised as in http_bench, but every request is still counted.
        "RATELIMIT_SIGNIN_PER_IP": "100000000/minute",
        "RATELIMIT_SIGNIN_PER_USER": "100000000/minute",
        "RATELIMIT_WRITE_PER_USER": "100000000/minute",
        "RATELIMIT_WRITE_PER_IP": "100000000/minute",
    }


def forget_redis_keys(prefix: str) -> None:
    """The run's hub logs, leases and counters (some have no expiry)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def log_problems(text: str) -> list[str]:
    """The server log's warnings, errors and tracebacks."""
    problems = []
    for line in text.splitlines():
        try:
            level = json.loads(line).get("level", "")
        except (ValueError, AttributeError):
            level = "error" if re.search(r"Traceback|Error|Exception", line) else ""
        if level in ("warning", "error", "critical", "exception"):
            problems.append(line)
    return problems


def run_once(args: argparse.Namespace, workers: int) -> Result:
    db_name, db_url = asyncio.run(create_database())
    base = f"http://127.0.0.1:{args.port}"
    env = server_env(args, workers, db_url)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log_path = folder / "server.log"
        server = None
        try:
            asyncio.run(prepare(db_url, args.users))
            with log_path.open("wb") as log:
                server = subprocess.Popen(
                    [str(ROOT / ".venv/bin/simplrefq"), "serve", "--workers", str(workers)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            wait_ready(base, server)
            bodies = [
                json.dumps({"init_data": signed_init_data(base_fields(FIRST_TELEGRAM_ID + i))})
                for i in range(args.users)
            ]
            tokens = [str(answer["token"]) for answer in asyncio.run(sign_in_all(base, bodies))]
            asyncio.run(seed_book(base, tokens))
            wrk_orders(base, 2, args.connections, order_script(folder, tokens, "warm"))
            trades_before, resting_before = asyncio.run(book_figures(db_url))
            tag = uuid.uuid4().hex[:6]
            script = order_script(folder, tokens, tag)
            output, statuses = wrk_orders(base, args.seconds, args.connections, script)
            trades_after, resting_after = asyncio.run(book_figures(db_url))
            fate = asyncio.run(fates(db_url, tag))
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
        try:
            verified = subprocess.run(
                [str(ROOT / ".venv/bin/simplrefq"), "ledger", "verify"],
                env=env,
                capture_output=True,
                text=True,
            )
            verify = (verified.stdout + verified.stderr).strip()
            verify = ("OK: " if verified.returncode == 0 else "FAILED: ") + verify
        finally:
            asyncio.run(drop_database(db_name))
            forget_redis_keys(env["REDIS_KEY_PREFIX"])
        problems = log_problems(log_path.read_text(errors="replace"))
    socket_errors = re.search(r"Socket errors: .*", output)
    return Result(
        workers=workers,
        figures=parse_wrk(output),
        statuses=statuses,
        socket_errors=socket_errors.group(0) if socket_errors else "",
        trades=trades_after - trades_before,
        resting_before=resting_before,
        resting_after=resting_after,
        fates=fate,
        verify=verify,
        log_problems=problems,
    )


def report(result: Result) -> None:
    f = result.figures
    print(f"-- {result.workers} worker(s)")
    print(
        f"  POST /api/orders  {result.accepted_per_s:8.0f} accepted orders/s (HTTP 201)   "
        f"(target: >= 3,000/s)"
    )
    print(f"  all requests      {f['rps']:8.0f} req/s")
    print(
        f"  latency           p50 {f['p50_ms']:.2f} ms  p90 {f['p90_ms']:.2f} ms  "
        f"p99 {f['p99_ms']:.2f} ms   (target: p99 < 50 ms; all responses)"
    )
    statuses = "  ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()))
    non_2xx = sum(n for s, n in result.statuses.items() if not 200 <= s < 300)
    print(f"  responses         {statuses}   (non-2xx: {non_2xx})")
    if result.socket_errors:
        print(f"  {result.socket_errors}")
    print(
        f"  trades made       {result.trades}   resting orders: {result.resting_before} "
        f"before the run, {result.resting_after} after"
    )
    print("  orders' fates     " + "  ".join(f"{k}: {n}" for k, n in result.fates.items()))
    print(f"  ledger verify     {result.verify}")
    if result.log_problems:
        print(f"  server log: {len(result.log_problems)} lines mention errors, e.g.")
        for line in result.log_problems[:6]:
            print(f"    {line[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--compare-workers", action="store_true", help="also run the same load with 1 worker"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    if not args.port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]

    results = [run_once(args, args.workers)]
    if args.compare_workers and args.workers != 1:
        results.append(run_once(args, 1))
    print(
        f"machine: {os.cpu_count()} cores (PostgreSQL, Redis, server and wrk share them); "
        f"server: simplrefq serve, PostgreSQL + Redis; wrk -t2 -c{args.connections} "
        f"-d{args.seconds}s; {args.users} users; {GTC_SHARE:.0%} GTC near 5.2000, "
        f"the rest IOC; targets: {TARGETS}"
    )
    for result in results:
        report(result)


if __name__ == "__main__":
    main()
