"""Matching engine benchmark: commands per second and per-command latency, one market, one core.

The workload is shaped like exchange-core's order generator: mostly GTC limit orders near the
top of the book (some crossing it), cancels, IOC, market and FOK orders, and amends (price moves
and size cuts), with the book held near ``--resting`` orders by steering the mix toward places
or cancels.  The commands are generated first, with a fixed seed, by running them through a
book (so a cancel names an order that is really resting); the timed passes then replay them on
fresh books, and must end in the same state as the generating run.

    .venv/bin/python bench/engine_bench.py [--commands 1000000] [--resting 1000] [--seed 7]
        [--repeat 3] [--no-gc]

Throughput: ``Book.apply`` in a bare loop, best and median of ``--repeat`` passes.  Latency: a
separate pass timing each command with ``time.perf_counter_ns``; the timer's own cost (two
calls back to back, median) is printed and not subtracted.

The pre-generated commands (a million objects) are moved out of the cyclic collector's sight
with ``gc.freeze()``: otherwise each full collection walks them and adds ~100 ms pauses that a
service, holding one command at a time, would not have.  The collector stays on for everything
the engine allocates (``--no-gc`` turns it off while timing, for comparison).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from backend.testing.stats import percentile
from backend.trading.engine import (
    Amend,
    Book,
    Cancel,
    Command,
    MarketSpec,
    OrderType,
    Place,
    Side,
    TimeInForce,
)

# ETH-USDT-like: 0.01 tick, 0.0001 ETH lot, 1 USDT unit (10**-6) per tick*lot; Binance's
# default spot fees (0.1 %) for the taker, a little less for the maker, so fee math runs.
SPEC = MarketSpec("ETH-USDT", min_notional=1_000, maker_fee_bps=8, taker_fee_bps=10)
START_MID = 350_000  # 3,500.00 in ticks
USERS = 2_000
# The share of each command kind (before steering toward the resting target).
MIX = {
    "gtc": 0.50,
    "cancel": 0.25,
    "ioc": 0.09,
    "amend_price": 0.06,
    "amend_qty": 0.04,
    "market": 0.04,
    "fok": 0.02,
}
# Of GTC orders, how many are priced through the other side (and trade at once).
AGGRESSIVE = 0.12
# Mean distance in ticks of a passive GTC order from the top of its side.
MEAN_DEPTH = 6.0


@dataclass
class Workload:
    prefill: list[Command]
    commands: list[Command]
    mix: Counter[str] = field(default_factory=Counter)
    final: object = None


def generate(total: int, resting: int, seed: int) -> Workload:
    """Builds the commands by running them: a cancel or amend always names a live order."""
    rng = random.Random(seed)
    book = Book(SPEC)
    live: list[int] = []
    mid = START_MID
    kinds = list(MIX)
    weights = list(MIX.values())
    workload = Workload(prefill=[], commands=[])

    def pick_live() -> int | None:
        while live:
            i = rng.randrange(len(live))
            oid = live[i]
            if oid in book:
                return oid
            live[i] = live[-1]
            live.pop()
        return None

    def passive_price(side: Side) -> int:
        depth = int(rng.expovariate(1 / MEAN_DEPTH))
        best = book.best_bid() if side is Side.BUY else book.best_ask()
        if side is Side.BUY:
            top = min(best if best is not None else mid - 1, mid - 1)
            return top - depth
        top = max(best if best is not None else mid + 1, mid + 1)
        return top + depth

    def through_price(side: Side) -> int:
        best = book.best_ask() if side is Side.BUY else book.best_bid()
        if best is None:
            best = mid
        reach = rng.randint(0, 4)
        return best + reach if side is Side.BUY else best - reach

    def run(cmd: Command, into: list[Command], kind: str) -> None:
        book.apply(cmd)
        into.append(cmd)
        if into is workload.commands:
            workload.mix[kind] += 1
        if isinstance(cmd, Place) and cmd.tif is TimeInForce.GTC and book.last_order_id in book:
            live.append(book.last_order_id)

    def gtc(into: list[Command]) -> None:
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        aggressive = rng.random() < AGGRESSIVE
        price = through_price(side) if aggressive else passive_price(side)
        qty = rng.randint(1, 40)
        run(Place(rng.randrange(USERS), side, price, qty), into, "gtc")

    while len(book) < resting:
        gtc(workload.prefill)
    target = workload.commands
    while len(target) < total:
        if rng.random() < 0.02:
            mid += rng.choice((-1, 1))
        kind = rng.choices(kinds, weights)[0]
        if kind == "gtc" and len(book) > resting * 1.1:
            kind = "cancel"
        elif kind == "cancel" and len(book) < resting * 0.9:
            kind = "gtc"
        if kind == "gtc":
            gtc(target)
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        owner = rng.randrange(USERS)
        if kind in ("ioc", "fok"):
            tif = TimeInForce.IOC if kind == "ioc" else TimeInForce.FOK
            cmd: Command = Place(owner, side, through_price(side), rng.randint(1, 60), tif=tif)
        elif kind == "market":
            budget = rng.randint(50_000, 5_000_000) if rng.random() < 0.3 else 0
            cmd = Place(
                owner, side, 0, rng.randint(1, 40), type=OrderType.MARKET, quote_budget=budget
            )
        else:
            oid = pick_live()
            info = book.order(oid) if oid is not None else None
            if info is None:
                gtc(target)
                continue
            if kind == "cancel":
                cmd = Cancel(info.order_id, info.owner)
            elif kind == "amend_price":
                step = rng.randint(1, 3) * (1 if rng.random() < 0.5 else -1)
                cmd = Amend(info.order_id, info.owner, price=info.price + step)
            else:
                filled = info.qty - info.open
                cut = rng.randint(1, info.open - 1) if info.open > 1 else -rng.randint(1, 5)
                cmd = Amend(info.order_id, info.owner, qty=filled + info.open - cut)
        run(cmd, target, kind)
    workload.final = book.snapshot()
    return workload


def replay(workload: Workload) -> Book:
    book = Book(SPEC)
    for cmd in workload.prefill:
        book.apply(cmd)
    return book


def throughput(workload: Workload) -> tuple[float, Book]:
    book = replay(workload)
    apply = book.apply
    commands = workload.commands
    started = time.perf_counter_ns()
    for cmd in commands:
        apply(cmd)
    elapsed = time.perf_counter_ns() - started
    return len(commands) / (elapsed / 1e9), book


def latencies(workload: Workload) -> tuple[list[int], dict[str, list[int]], Book]:
    book = replay(workload)
    apply = book.apply
    clock = time.perf_counter_ns
    each = [0] * len(workload.commands)
    for i, cmd in enumerate(workload.commands):
        started = clock()
        apply(cmd)
        each[i] = clock() - started
    by_kind: dict[str, list[int]] = defaultdict(list)
    for cmd, ns in zip(workload.commands, each, strict=True):
        by_kind[kind_of(cmd)].append(ns)
    return each, by_kind, book


def kind_of(cmd: Command) -> str:
    if isinstance(cmd, Place):
        return "market" if cmd.type is OrderType.MARKET else f"limit {cmd.tif.value}"
    return "cancel" if isinstance(cmd, Cancel) else "amend"


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        started = clock()
        samples.append(clock() - started)
    return int(statistics.median(samples))


class GcPauses:
    """Times each cyclic collection, to tell the collector's pauses from the engine's own."""

    def __init__(self) -> None:
        self.pauses: list[int] = []
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.pauses.append(time.perf_counter_ns() - self._started)


def us(ordered: list[int], pct: float) -> float:
    """A percentile of sorted nanoseconds, in microseconds."""
    return percentile(ordered, pct) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--resting", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC while timing")
    args = parser.parse_args()

    started = time.perf_counter()
    workload = generate(args.commands, args.resting, args.seed)
    print(
        f"generated {len(workload.commands):,} commands after {len(workload.prefill):,} "
        f"prefill orders in {time.perf_counter() - started:.1f} s (seed {args.seed})"
    )
    total = sum(workload.mix.values())
    print("mix: " + ", ".join(f"{k} {v / total:.1%}" for k, v in workload.mix.most_common()))

    gc.collect()
    gc.freeze()
    if args.no_gc:
        gc.disable()
    rates = []
    for n in range(args.repeat):
        rate, book = throughput(workload)
        if book.snapshot() != workload.final:
            raise SystemExit(
                "replay diverged from the generating run: the engine is not deterministic"
            )
        rates.append(rate)
        print(f"pass {n + 1}: {rate:,.0f} commands/s")
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    each, by_kind, book = latencies(workload)
    gc.callbacks.remove(pauses)
    gc.enable()
    trades = book.last_trade_id
    print(
        f"throughput: best {max(rates):,.0f}, median {statistics.median(rates):,.0f} commands/s "
        f"(GC {'off' if args.no_gc else 'on'}; target >= 150,000)"
    )
    print(
        f"trades: {trades:,} ({trades / len(each):.2f} per command); "
        f"resting at the end: {len(book):,}; depth levels: "
        f"{len(book.bids.keys)} bids, {len(book.asks.keys)} asks"
    )
    ordered = sorted(each)
    print(
        f"latency per command (us): p50 {us(ordered, 50):.2f}, "
        f"p99 {us(ordered, 99):.2f}, p99.9 {us(ordered, 99.9):.2f}, "
        f"max {ordered[-1] / 1000:.1f} (target p99 < 50); "
        f"timer overhead {timer_overhead()} ns, included"
    )
    if pauses.pauses:
        print(
            f"GC in that pass: {len(pauses.pauses)} collections, "
            f"{sum(pauses.pauses) / 1e6:.1f} ms in all, longest {max(pauses.pauses) / 1000:.0f} us"
        )
    for kind, values in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        values.sort()
        print(
            f"  {kind:<10} {len(values):>9,}  p50 {us(values, 50):6.2f}  "
            f"p99 {us(values, 99):6.2f}  p99.9 {us(values, 99.9):7.2f}"
        )


if __name__ == "__main__":
    main()
