"""WebSocket hub benchmark: thousands of clients on `GET /ws`, served by `simplrefq serve`.

Starts the production server command (uvicorn, several workers, PostgreSQL + Redis) in its own
process group and opens --clients real WebSocket connections from --procs load-generator
processes (backend/testing/wsclient.py: a lean client, so that the generators' own cost stays
small), each client subscribed to one of --topics trade topics.  A publisher process of its
own publishes through the Redis hub backend, as any server process would, with the send time in
every payload.  Prints connections held, frames delivered per second, delivery latency, sequence
gaps and the server's memory per idle connection, beside the targets.

    .venv/bin/python bench/ws_bench.py [--clients 5000] [--procs 2] [--rate 10] [--seconds 10]

Needs PostgreSQL and Redis on loopback (see README).  The load generators are Python and share
the machine's cores with the server: the CPU line shows which side ran out first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from queue import Empty
from typing import Any

import msgspec

from backend.testing.scratch import REDIS_URL, create_database, drop_database, wait_ready
from backend.testing.stats import percentile
from backend.testing.wsclient import LeanClient

ROOT = Path(__file__).resolve().parent.parent
# Handshakes 200 at a time (split over the load generators) stay well inside uvicorn's listen
# backlog of 2048, so a refused connection means the server, not the queue, gave up.
CONNECT_CONCURRENCY = 200
# Long enough for the handshake garbage to be collected and the per-connection tasks to settle.
IDLE_SECONDS = 3.0
# Frames still in flight when publishing stops get this long before they count as lost.
DRAIN_SECONDS = 5.0
# The load generators' event loops are sampled this often: a wake-up that comes late means
# frames were also waiting in the client, not only in the server.
LAG_PROBE_SECONDS = 0.05
# Latency histogram: 10 µs buckets below 100 ms, 1 ms buckets above; a few thousand keys at
# most, where keeping every value would ship millions of numbers back to the parent.
FINE_BUCKETS = 10_000
TARGETS = {
    "held": "target: 10,000 concurrent connections held",
    "rate": "target: >= 100,000 frames/s aggregate",
    "p99": "target: p99 < 50 ms at 5,000 clients x 10 msg/s",
    "rss": "target: <= 20 KB per idle connection",
}


class Data(msgspec.Struct):
    t: int = 0


class Frame(msgspec.Struct):
    """Both kinds of server frame: ``op`` answers and ``topic``/``seq`` messages."""

    op: str = ""
    topic: str = ""
    seq: int = 0
    code: str = ""
    data: Data | None = None


_decode = msgspec.json.Decoder(Frame).decode
SUBSCRIBE = '{"op": "subscribe", "topics": ["%s"]}'


# -- load generator (one process each) ---------------------------------------------------------


class Client:
    __slots__ = ("answer", "conn", "first", "last", "missing", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.first = self.last = 0  # seq of the subscribed answer; last seq received
        self.missing: set[int] = set()  # seqs skipped over and not (yet) received
        self.conn: LeanClient | None = None
        self.answer: asyncio.Future[Frame] | None = None


class Tally:
    """What one load generator saw, summed over its clients."""

    def __init__(self) -> None:
        self.frames = self.duplicated = self.out_of_order = self.max_ns = 0
        self.last_ns = 0
        self.histogram: Counter[int] = Counter()
        self.lags: list[float] = []
        self.closed: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()


def raise_fd_limit() -> tuple[int, int]:
    """Soft limit up to the hard one: every connection is a file descriptor."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = int(Path("/proc/sys/fs/nr_open").read_text())
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:80] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reader(client: Client, tally: Tally) -> Callable[[bytes], None]:
    """What a client does with each text message: check its seq, time it."""
    histogram = tally.histogram

    def on_text(raw: bytes) -> None:
        now = time.time_ns()
        frame = _decode(raw)
        if frame.data is None:
            answer = client.answer
            if answer is not None and not answer.done():
                answer.set_result(frame)
            elif frame.op == "error":
                tally.errors[frame.code] += 1
            return
        latency = max(0, now - frame.data.t)
        micros = latency // 1000
        histogram[micros // 10 if micros < 100_000 else FINE_BUCKETS + micros // 1000] += 1
        tally.frames += 1
        tally.last_ns = now
        if latency > tally.max_ns:
            tally.max_ns = latency
        seq = frame.seq
        if seq == client.last + 1:
            client.last = seq
        elif seq > client.last:
            client.missing.update(range(client.last + 1, seq))
            client.last = seq
        elif seq in client.missing:
            client.missing.discard(seq)
            tally.out_of_order += 1
        else:
            tally.duplicated += 1

    return on_text


def _count_close(client: Client, tally: Tally) -> None:
    conn = client.conn
    assert conn is not None
    code = conn.close_code
    tally.closed[f"code {code} {conn.close_reason}" if code else "without a close frame"] += 1


async def _probe_lag(tally: Tally) -> None:
    while True:
        started = time.monotonic()
        await asyncio.sleep(LAG_PROBE_SECONDS)
        if tally.frames:
            tally.lags.append(time.monotonic() - started - LAG_PROBE_SECONDS)


async def _open(
    client: Client, address: tuple[str, int], limit: float, gate: asyncio.Semaphore, tally: Tally
) -> str | None:
    """Connect and subscribe; the reason it failed, or None."""
    loop = asyncio.get_running_loop()
    async with gate:
        conn, stage = None, "opening"
        try:
            async with asyncio.timeout(limit):
                client.answer = loop.create_future()
                host = f"{address[0]}:{address[1]}"
                _, conn = await loop.create_connection(
                    lambda: LeanClient(host, "/ws", _reader(client, tally)), *address
                )
                await conn.opened
                stage = "subscribing"
                conn.send_text(SUBSCRIBE % client.topic)
                answer = await client.answer
            if answer.op != "subscribed":
                raise RuntimeError(f"answered {answer.op} {answer.code}")
        except (Exception, asyncio.CancelledError) as exc:
            if conn is not None:
                conn.abort()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return f"{stage}: {_why(exc)}"
    client.conn, client.first, client.last = conn, answer.seq, answer.seq
    conn.closed.add_done_callback(lambda _: _count_close(client, tally))
    return None


async def _generate(
    index: int,
    address: tuple[str, int],
    topics: list[str],
    options: dict[str, float],
    control: Connection,
    results: Any,
) -> None:
    clients = [Client(topic) for topic in topics]
    tally = Tally()
    gate = asyncio.Semaphore(int(options["concurrency"]))
    started = time.monotonic()
    tasks = [
        asyncio.create_task(_open(c, address, options["timeout"], gate, tally)) for c in clients
    ]
    done, pending = await asyncio.wait(tasks, timeout=options["budget"])
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures = Counter(task.result() for task in done if task.result() is not None)
    failures["not opened within --connect-seconds"] += len(pending)
    opened = sum(c.conn is not None for c in clients)
    results.put(("connected", index, opened, +failures, time.monotonic() - started))

    probe = asyncio.create_task(_probe_lag(tally))
    finals: dict[str, int] | None = await asyncio.to_thread(control.recv)
    probe.cancel()
    live = [c for c in clients if c.conn is not None]
    if finals is not None:
        for _ in range(int(DRAIN_SECONDS / 0.05)):
            behind = [c for c in live if c.last < finals.get(c.topic, c.first)]
            if not any(not c.conn.closed.done() for c in behind):  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        lost = sum(len(c.missing) + max(0, finals.get(c.topic, c.first) - c.last) for c in live)
        expected = sum(finals.get(c.topic, c.first) - c.first for c in live)
        held = sum(not c.conn.closed.done() for c in live)  # type: ignore[union-attr]
        starved = sum(c.last == c.first < finals.get(c.topic, c.first) for c in live)
        results.put(
            (
                "result",
                index,
                {
                    "frames": tally.frames,
                    "expected": expected,
                    "lost": lost,
                    "duplicated": tally.duplicated,
                    "out_of_order": tally.out_of_order,
                    "held": held,
                    "starved": starved,
                    "last_ns": tally.last_ns,
                    "max_ns": tally.max_ns,
                    "histogram": dict(tally.histogram),
                    "lags": tally.lags,
                    "closed": dict(tally.closed),
                    "errors": dict(tally.errors),
                },
            )
        )
    for client in live:
        client.conn.abort()  # type: ignore[union-attr]
    await asyncio.gather(*(c.conn.closed for c in live), return_exceptions=True)  # type: ignore[union-attr]


def load_generator(
    index: int,
    address: tuple[str, int],
    topics: list[str],
    options: dict[str, float],
    control: Connection,
    results: Any,
) -> None:
    raise_fd_limit()
    _runner()[1](_generate(index, address, topics, options, control, results))


def _runner() -> tuple[str, Any]:
    """uvloop where installed (the server runs on it too): less of the cores go to the clients."""
    try:
        import uvloop
    except ImportError:
        return "asyncio", asyncio.run
    return "uvloop", uvloop.run


# -- publisher (a process of its own, like another server) -------------------------------------


async def _publish(prefix: str, topics: list[str], rate: float, seconds: float) -> dict[str, Any]:
    from redis.asyncio import Redis

    from backend.hub.backends.redis import RedisBackend
    from backend.hub.hub import Hub

    redis = Redis.from_url(REDIS_URL)
    hub = Hub(RedisBackend(redis, prefix))
    await hub.start()
    total = round(rate * len(topics) * seconds)
    interval = 1 / (rate * len(topics))
    finals: dict[str, int] = {}
    started_ns, started = time.time_ns(), time.monotonic()
    sent = 0
    try:
        for sent in range(total):
            delay = started + sent * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > seconds:
                break  # hopelessly behind: stop rather than run on unbounded
            topic = topics[sent % len(topics)]
            payload = {"t": time.time_ns(), "n": sent}
            finals[topic] = await hub.publish(topic, "event", payload)
        else:
            sent = total
    finally:
        await hub.close()
        await redis.aclose()
    elapsed = time.monotonic() - started
    return {"sent": sent, "elapsed": elapsed, "started_ns": started_ns, "finals": finals}


def publisher(prefix: str, topics: list[str], rate: float, seconds: float, results: Any) -> None:
    results.put(asyncio.run(_publish(prefix, topics, rate, seconds)))


# -- the server and its processes --------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_ticks(pids: dict[int, str]) -> dict[int, int]:
    """utime + stime of each process, and of the whole machine (busy, all) under pid -1, -2."""
    ticks = {}
    for pid in pids:
        try:
            fields = _stat(pid)
            ticks[pid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            continue
    machine = [int(field) for field in Path("/proc/stat").read_text().split()[1:9]]
    ticks[-1], ticks[-2] = sum(machine) - machine[3] - machine[4], sum(machine)
    return ticks


def _server_role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "server"
    return "server resource tracker" if b"resource_tracker" in command else "server worker"


def redis_pids() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if (
                entry.isdigit()
                and Path(f"/proc/{entry}/comm").read_text().strip() == "redis-server"
            ):
                found.append(int(entry))
        except OSError:
            continue
    return found


def cpu_line(label: str, names: dict[int, str], before: dict[int, int], seconds: float) -> str:
    after, hertz = cpu_ticks(names), os.sysconf("SC_CLK_TCK")
    shares = [
        f"{names[pid]} {100 * (after[pid] - before[pid]) / hertz / seconds:.0f}%"
        for pid in names
        if pid in after and pid in before
    ]
    cores = os.cpu_count() or 1
    busy = (after[-1] - before[-1]) / max(1, after[-2] - before[-2])
    named = sum(after[pid] - before[pid] for pid in names if pid in after and pid in before)
    other = 100 * busy * cores - 100 * named / hertz / seconds
    return (
        f"CPU {label} ({seconds:.1f} s): machine {100 * busy:.0f}% busy of {cores} cores; "
        f"% of one core: {', '.join(shares)}, everything else {max(0.0, other):.0f}%"
    )


async def forget_keys(prefix: str) -> None:
    """The run's hub streams, sequences and feed state: nothing else shares its prefix."""
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        await redis.unlink(key)
    await redis.aclose()


def collect(queue: Any, kind: str, count: int, timeout: float) -> dict[int, tuple[Any, ...]]:
    """Up to ``count`` ``kind`` reports from the load generators, keyed by generator."""
    reports: dict[int, tuple[Any, ...]] = {}
    deadline = time.monotonic() + timeout
    while len(reports) < count and time.monotonic() < deadline:
        try:
            report = queue.get(timeout=max(0.1, deadline - time.monotonic()))
        except Empty:
            break
        if report[0] == kind:
            reports[report[1]] = report[2:]
    return reports


def bucket_percentile(histogram: Counter[int], fraction: float) -> float:
    """Upper edge of the bucket holding the ``fraction`` quantile, in ms."""
    rank, seen = fraction * sum(histogram.values()), 0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= rank:
            return (key + 1) * 0.01 if key < FINE_BUCKETS else float(key - FINE_BUCKETS + 1)
    return 0.0


# -- the run -----------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, base: str, server: subprocess.Popen[bytes], prefix: str
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    topics = [f"trades:BENCH{i}-USDT" for i in range(args.topics)]
    host, port = base.removeprefix("http://").rsplit(":", 1)
    address = (host, int(port))
    results = ctx.Queue()
    options = {
        "concurrency": max(1, CONNECT_CONCURRENCY // args.procs),
        "timeout": args.connect_timeout,
        "budget": args.connect_seconds,
    }
    generators = []
    names = {pid: _server_role(pid) for pid in process_tree(server.pid)}
    names[server.pid] = "server supervisor"
    names |= {pid: "redis-server" for pid in redis_pids()}
    figures: dict[str, Any] = {"rss_before": rss_kb(process_tree(server.pid))}
    try:
        for index in range(args.procs):
            control, remote = ctx.Pipe()
            mine = [topics[i % len(topics)] for i in range(index, args.clients, args.procs)]
            process = ctx.Process(
                target=load_generator,
                args=(index, address, mine, options, remote, results),
                daemon=True,
            )
            process.start()
            generators.append((process, control))
            names[process.pid] = f"load generator {index}"  # type: ignore[index]

        started, ticks = time.monotonic(), cpu_ticks(names)
        connected = collect(results, "connected", args.procs, args.connect_seconds + 30)
        print(cpu_line("while connecting", names, ticks, time.monotonic() - started))
        opened = figures["opened"] = sum(report[0] for report in connected.values())
        failures: Counter[str] = sum((Counter(r[1]) for r in connected.values()), Counter())
        slowest = max((report[2] for report in connected.values()), default=0.0)
        print(f"connected {opened} of {args.clients} clients in {slowest:.1f} s")
        for reason, count in failures.most_common():
            print(f"  failed: {count:6d}  {reason}")
        if failures and not args.server_log:
            print("  (--server-log FILE keeps the server's output)")
        if len(connected) < args.procs:
            print(f"  {args.procs - len(connected)} load generator(s) never reported")
        time.sleep(IDLE_SECONDS)
        figures["rss_after"] = rss_kb(process_tree(server.pid))

        published: Any = ctx.Queue()
        feeder = ctx.Process(
            target=publisher,
            args=(prefix, topics, args.rate, args.seconds, published),
            daemon=True,
        )
        feeder.start()
        names[feeder.pid] = "publisher"  # type: ignore[index]
        started, ticks = time.monotonic(), cpu_ticks(names)
        deadline = started + 2 * args.seconds + 60
        while time.monotonic() < deadline and "finals" not in figures:
            with contextlib.suppress(Empty):
                figures |= published.get(timeout=1)
            if feeder.exitcode not in (None, 0):
                raise RuntimeError(f"the publisher failed (exit code {feeder.exitcode})")
        print(cpu_line("while publishing", names, ticks, time.monotonic() - started))
        feeder.join(timeout=10)
        for _, control in generators:
            control.send(figures.get("finals", {}))
        reports = collect(results, "result", len(connected), DRAIN_SECONDS + 60).values()
        figures["reports"] = [report[0] for report in reports]
        # The server's own CPU from the first publish to the last frame read: the figure the
        # load generators sharing the cores cannot distort.
        after = cpu_ticks(names)
        servers = [pid for pid, name in names.items() if name.startswith("server")]
        used = sum(after.get(pid, 0) - ticks.get(pid, 0) for pid in servers)
        figures["server_cpu_s"] = used / os.sysconf("SC_CLK_TCK")
    finally:
        for process, control in generators:
            with contextlib.suppress(OSError):
                control.send(None)
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    return figures


def report(args: argparse.Namespace, figures: dict[str, Any]) -> list[str]:
    """Print the figures; return what makes the run a failure (empty when it is sound)."""
    reports = figures["reports"]
    total = {
        key: sum(r[key] for r in reports)
        for key in ("frames", "expected", "lost", "duplicated", "out_of_order", "held", "starved")
    }
    histogram: Counter[int] = Counter()
    for item in reports:
        histogram.update(item["histogram"])
    lags = sorted(lag for item in reports for lag in item["lags"])
    closed: Counter[str] = sum((Counter(r["closed"]) for r in reports), Counter())
    errors: Counter[str] = sum((Counter(r["errors"]) for r in reports), Counter())
    last_ns = max((r["last_ns"] for r in reports), default=0)
    window = max(1e-9, (last_ns - figures.get("started_ns", 0)) / 1e9)
    max_ms = max((r["max_ns"] for r in reports), default=0) / 1e6
    sent, elapsed, opened = figures.get("sent", 0), figures.get("elapsed", 0.0), figures["opened"]
    grown = figures["rss_after"] - figures["rss_before"]

    print()
    print(
        f"machine: {os.cpu_count()} cores; server: simplrefq serve, {args.workers} workers, "
        f"PostgreSQL + Redis; {args.procs} load generator processes on {_runner()[0]}; "
        f"fd limit {args.fd_limit}"
    )
    print(
        f"published {sent} messages in {elapsed:.1f} s ({sent / max(elapsed, 1e-9):.0f} msg/s; "
        f"asked {args.rate:g}/s on each of {args.topics} topics = {args.rate * args.topics:g}/s)"
    )
    print(f"clients connected        {opened:8d} of {args.clients}")
    print(f"clients held to the end  {total['held']:8d}   ({TARGETS['held']})")
    print(f"frames delivered         {total['frames']:8d} of {total['expected']} expected")
    print(
        f"frames/s aggregate       {total['frames'] / window:8.0f}   ({TARGETS['rate']}; "
        f"offered here: {opened} clients x {args.rate:g}/s = {opened * args.rate:.0f}/s)"
    )
    if histogram:
        print(
            f"latency p50 {bucket_percentile(histogram, 0.5):.2f} ms  "
            f"p99 {bucket_percentile(histogram, 0.99):.2f} ms  max {max_ms:.2f} ms   "
            f"({TARGETS['p99']})"
        )
    if lags:
        p50, p99 = (1000 * percentile(lags, pct) for pct in (50, 99))
        print(
            f"  client side: load-generator event loops woke late by p50 {p50:.1f} ms  "
            f"p99 {p99:.1f} ms  max {1000 * lags[-1]:.1f} ms"
        )
    if total["frames"]:
        print(
            f"server CPU {figures['server_cpu_s']:.2f} s for {total['frames']} frames: "
            f"{1e6 * figures['server_cpu_s'] / total['frames']:.1f} µs per delivered frame"
        )
    print(
        f"lost {total['lost']}  duplicated {total['duplicated']}  "
        f"out-of-order {total['out_of_order']}   (target: 0 each)"
    )
    print(
        f"server RSS {figures['rss_before'] / 1024:.0f} MB -> {figures['rss_after'] / 1024:.0f} MB"
        f" idle with {opened} connections: "
        f"{grown / opened if opened else float('nan'):.1f} KB per idle connection   "
        f"({TARGETS['rss']})"
    )
    if total["starved"]:
        print(f"  {total['starved']} clients received none of their topic's frames")
    for reason, count in closed.most_common():
        print(f"  closed before the end: {count:6d}  {reason}")
    for code, count in errors.most_common():
        print(f"  error frames: {count:6d}  {code}")
    return failures(args, figures, total, len(reports))


def failures(
    args: argparse.Namespace, figures: dict[str, Any], total: dict[str, int], reported: int
) -> list[str]:
    """Correctness, not speed: a run that lost, repeated or reordered a frame, starved a client
    or dropped a connection is broken however fast it was."""
    problems = []
    if reported < args.procs:
        problems.append(f"{args.procs - reported} load generator(s) sent no result")
    if figures["opened"] < args.clients:
        problems.append(f"{args.clients - figures['opened']} clients could not connect")
    if figures.get("sent", 0) < round(args.rate * args.topics * args.seconds):
        problems.append("the publisher fell behind and stopped early")
    for key in ("lost", "duplicated", "out_of_order", "starved"):
        if total[key]:
            problems.append(f"{total[key]} {key.replace('_', ' ')}")
    if total["held"] < figures["opened"]:
        problems.append(f"{figures['opened'] - total['held']} connections closed before the end")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=5000, help="WebSocket connections")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--topics", type=int, default=10, help="trade topics, clients spread")
    parser.add_argument("--rate", type=float, default=10, help="messages/s on each topic")
    parser.add_argument("--seconds", type=float, default=10, help="how long to publish")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--connect-timeout", type=float, default=20, help="per connection, s")
    parser.add_argument("--connect-seconds", type=float, default=120, help="for all, s")
    parser.add_argument("--server-log", type=Path, help="keep the server's output here")
    args = parser.parse_args()
    args.fd_limit = raise_fd_limit()[0]
    print(f"open files limit (RLIMIT_NOFILE) raised to {args.fd_limit}")
    if args.clients // args.procs + 100 > args.fd_limit:
        print(f"warning: {args.clients // args.procs} connections per process exceed the limit")

    db_name, db_url = asyncio.run(create_database())
    prefix = f"simplrefq-bench-{uuid.uuid4().hex[:8]}"
    base = f"http://127.0.0.1:{args.port}"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "AUTH_JWT_SECRET": uuid.uuid4().hex * 2,
        "LOG_REQUESTS": "false",
        # An empty model registry would train the signal models at start (a minute of CPU and
        # torch's memory in one worker): measured here is the serving, not that.
        "SIGNALS_ENABLED": "false",
        # Every simulated client connects from 127.0.0.1: lift the per-address socket cap.
        "HUB_MAX_SOCKETS_PER_ADDRESS": str(args.clients + 100),
    }
    command = [str(ROOT / ".venv/bin/simplrefq"), "serve", "--workers", str(args.workers)]
    command += ["--host", "127.0.0.1", "--port", str(args.port)]
    keep = args.server_log
    with keep.open("w+b") if keep else tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )
        try:
            wait_ready(base, server)
            figures = measure(args, base, server, prefix)
        finally:
            if server.poll() is not None:
                log.seek(0)
                print("server exited early; its last output:\n" + log.read().decode()[-3000:])
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            asyncio.run(drop_database(db_name))
            asyncio.run(forget_keys(prefix))
    problems = report(args, figures)
    if problems:
        print("FAILED: " + "; ".join(problems))
        sys.exit(1)
    print("OK: nothing lost, duplicated, reordered or starved; every connection held")


if __name__ == "__main__":
    main()
