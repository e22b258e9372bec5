"""``simplrefq``: one entry point for serving, the bot, migrations and administration."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import click

from backend.config import Settings, load_settings

if TYPE_CHECKING:
    from types import FrameType

    from backend.chains.devnet import Devnet
    from backend.db.engine import Database

T = TypeVar("T")

# Client frames are small JSON operations; a bigger one is refused with close code 1009.
MAX_WS_FRAME_BYTES = 64 * 1024
# Compression would deflate every frame once per client, undoing the hub's encode-once fan-out;
# the frames are small JSON, so the bytes saved are few.
WS_DEFLATE = False
# uvicorn's sans-I/O WebSocket protocol with the hub's hand-off (backend/hub/wire.py); named by
# its import path so that worker processes load it themselves.
WS_PROTOCOL = "backend.hub.wire:HubProtocol"


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SimplRefQ: Telegram mini-app for trading and points."""


@main.command()
@click.option("--host", default=None, help="Bind address (default APP_HOST).")
@click.option("--port", type=int, default=None, help="Port (default APP_PORT).")
@click.option("--workers", type=int, default=None, help="Processes (default APP_WORKERS).")
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply database migrations before serving.",
)
def serve(host: str | None, port: int | None, workers: int | None, migrate: bool) -> None:
    """Serve the mini-app, the API and the bot webhook (production server: uvicorn)."""
    import uvicorn

    settings = _settings()
    host = host or settings.app.host
    port = port or settings.app.port
    workers = workers or settings.app.workers
    if workers > 1 and settings.embedded:
        raise click.ClickException(
            "several workers need DATABASE_URL (PostgreSQL) and REDIS_URL; "
            "the embedded default runs in one process"
        )
    if migrate:
        from backend.db import migrate as migrations

        migrations.upgrade(settings)
    if workers > 1:
        _share_metrics_between_workers()
    local_chains = _start_devnet(settings)
    mode = "embedded default: SQLite, in-process state" if settings.embedded else "PostgreSQL"
    click.echo(f"SimplRefQ ({mode}): open http://{host}:{port}/  (API docs: /schema)", err=True)
    if local_chains is not None:
        _stop_before_sigterm(local_chains)
    try:
        uvicorn.run(
            "backend.asgi:app",
            host=host,
            port=port,
            workers=workers,
            proxy_headers=bool(settings.app.forwarded_allow_ips),
            forwarded_allow_ips=settings.app.forwarded_allow_ips,
            ws_max_size=MAX_WS_FRAME_BYTES,
            ws_per_message_deflate=WS_DEFLATE,
            ws=WS_PROTOCOL,
            log_config=None,
            access_log=False,
        )
    finally:
        if local_chains is not None:
            local_chains.stop()


def _stop_before_sigterm(local_chains: Devnet) -> None:
    """uvicorn ends by raising again the SIGTERM it stopped on, whose default action ends the
    process at once, before any ``finally``: stop the chains first, then end as before."""

    def stop(signum: int, _: FrameType | None) -> None:
        local_chains.stop()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, stop)


def _start_devnet(settings: Settings) -> Devnet | None:
    """The embedded demo's two local chains, their settings put in the environment that the
    app reads its settings from.  A demo without them still runs: deposits stay closed."""
    from backend.chains import devnet as dev
    from backend.chains.anvil import AnvilUnavailableError

    if not dev.wanted(settings):
        return None
    try:
        started = dev.start(settings.app.data_dir)
    except AnvilUnavailableError:
        click.echo("no local chains: anvil is missing (npm ci --prefix contracts/evm)", err=True)
        return None
    except dev.DevnetError as exc:
        click.echo(f"no local chains: {exc}", err=True)
        return None
    for name, value in started.environment().items():
        os.environ.setdefault(name, value)
    where = ", ".join(
        f"{name} (chain {c.chain_id}) at {c.rpc_url}" for name, c in started.chains.items()
    )
    click.echo(f"local chains: {where}; deposit with `simplrefq devnet deposit`", err=True)
    return started


def _share_metrics_between_workers() -> None:
    """Each worker keeps its own counters; Prometheus' multiprocess mode sums them on /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="simplrefq-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


@main.group()
def bot() -> None:
    """The Telegram bot: long polling, or a webhook served by `simplrefq serve`."""


def _bot_settings() -> Settings:
    settings = _settings()
    if not settings.bot.token:
        raise click.ClickException("BOT_TOKEN is not set: the bot is off")
    return settings


@bot.command("poll")
def bot_poll() -> None:
    """Run the bot with long polling (removes any webhook first)."""
    from bot.runtime import run_polling

    asyncio.run(run_polling(_bot_settings()))


@bot.command("set-webhook")
def bot_set_webhook() -> None:
    """Point Telegram at APP_PUBLIC_URL/bot/webhook (HTTPS) with BOT_WEBHOOK_SECRET."""
    from bot.runtime import set_webhook

    settings = _bot_settings()
    if not settings.app.base_url.startswith("https://"):
        raise click.ClickException("Telegram needs an HTTPS APP_PUBLIC_URL for a webhook")
    url = asyncio.run(set_webhook(settings))
    click.echo(f"webhook set to {url}")


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from backend.db import migrate as migrations

    migrations.upgrade(_settings(), revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. base)."""
    from backend.db import migrate as migrations

    migrations.downgrade(_settings(), revision)


@main.group()
def users() -> None:
    """User administration."""


@users.command("set-role")
@click.argument("telegram_id", type=int)
@click.argument("role", type=click.Choice(["user", "moderator", "admin"]))
def users_set_role(telegram_id: int, role: str) -> None:
    """Give the user with TELEGRAM_ID a ROLE (bootstraps the first admin; audited)."""
    asyncio.run(_set_role(_settings(), telegram_id, role))


async def _set_role(settings: Settings, telegram_id: int, role: str) -> None:
    from backend.audit.service import AuditContext
    from backend.auth import roles
    from backend.db.engine import Database
    from backend.db.uow import unit_of_work
    from backend.users import service
    from backend.users.models import Role

    db = Database.connect(settings)
    try:
        async with unit_of_work(db) as uow:
            user = await service.get_by_telegram_id(uow.session, telegram_id)
            if user is None or user.id is None:
                raise click.ClickException(f"no user with telegram id {telegram_id}; sign in first")
            await roles.set_role(
                uow.session, AuditContext(actor_id=None, ip="cli"), user.id, Role(role)
            )
    finally:
        await db.dispose()
    click.echo(f"telegram user {telegram_id} is now {role}")


@main.group()
def worker() -> None:
    """Background workers that run apart from the web server."""


@worker.command("notify")
def worker_notify() -> None:
    """Deliver the notification outbox through the bot (set NOTIFY_IN_APP=false on the
    servers when this runs)."""
    from bot.runtime import create_bot

    settings = _bot_settings()

    async def deliver(db: Database) -> None:
        from backend.db.redis import connect_redis
        from backend.notify.worker import notifier_for

        redis = connect_redis(settings)
        bot = create_bot(settings)
        try:
            await notifier_for(db, bot, redis, settings).run()
        finally:
            await bot.session.close()
            if redis is not None:
                await redis.aclose()

    click.echo("delivering notifications (Ctrl-C stops)", err=True)
    asyncio.run(_with_database(settings, deliver))


@worker.command("signals")
def worker_signals() -> None:
    """Score the markets' closed candles and publish their signals (set SIGNALS_IN_APP=false
    on the servers when this runs; the feed's process still records the candles)."""
    settings = _settings()
    if not settings.signals.enabled:
        raise click.ClickException("SIGNALS_ENABLED is off")
    if not settings.redis.url:
        click.echo(
            "warning: without REDIS_URL the signals reach no server's clients "
            "(stored and notified all the same)",
            err=True,
        )

    async def score(db: Database) -> None:
        from backend.db.redis import connect_redis
        from backend.hub.backends import backend_for
        from backend.hub.hub import Hub
        from backend.signals.service import Signals
        from backend.signals.worker import SignalsWorker

        redis = connect_redis(settings)
        hub = Hub(backend_for(redis, settings.redis.key_prefix))
        await hub.start()
        worker = SignalsWorker(
            db,
            hub,
            Signals.from_settings(settings),
            train=settings.train_signal_models,
            poll_seconds=settings.signals.poll_seconds,
        )
        try:
            await worker.run()
        finally:
            await hub.close()
            if redis is not None:
                await redis.aclose()

    click.echo(f"scoring signals from {settings.signals_models_dir} (Ctrl-C stops)", err=True)
    asyncio.run(_with_database(settings, score))


@main.group()
def ledger() -> None:
    """The ledger: verification and housekeeping."""


@ledger.command("verify")
def ledger_verify() -> None:
    """Check that debits equal credits, balances equal their transfers, no balance breaks its
    account's rules, and the hash chains are intact.  Exits 1 on any problem."""
    from backend.ledger.verify import verify

    report = asyncio.run(_with_database(_settings(), verify))
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@ledger.command("expire")
def ledger_expire() -> None:
    """Void pending transfers whose time ran out (the server also does this every minute)."""
    from backend.ledger.service import Ledger

    async def expire(db: Database) -> int:
        total = 0
        while voided := await Ledger().expire(db):
            total += voided
        return total

    click.echo(f"voided {asyncio.run(_with_database(_settings(), expire))} expired transfers")


@main.group()
def points() -> None:
    """Points: the leaderboard cache."""


@points.command("rebuild-leaderboard")
def points_rebuild_leaderboard() -> None:
    """Rebuild the Redis leaderboard from the ledger (after Redis lost its data, say)."""
    from redis.asyncio import Redis

    from backend.points.leaderboard import RedisLeaderboard

    settings = _settings()
    if not settings.redis.url:
        raise click.ClickException("REDIS_URL is not set: the board is read from the ledger")

    async def rebuild(db: Database) -> int:
        redis = Redis.from_url(settings.redis.url)
        try:
            return await RedisLeaderboard(redis, settings.redis.key_prefix).rebuild(db)
        finally:
            await redis.aclose()

    count = asyncio.run(_with_database(settings, rebuild))
    click.echo(f"leaderboard rebuilt: {count} entries")


@main.group()
def chains() -> None:
    """On-chain custody: what the vaults hold against the ledger."""


@chains.command("reconcile")
def chains_reconcile() -> None:
    """Compare each configured chain's custody in the ledger (what users were credited) with
    the vault's token balance on chain.  Exits 1 on a shortfall: a chain holding less than the
    ledger says users deposited.  More on chain (deposits awaiting confirmations or not
    credited, tokens sent without a deposit, dust below the ledger's precision) is shown but
    is not a failure."""
    from backend.chains.reconcile import reconcile
    from backend.chains.rpc import RpcError
    from backend.ledger.assets import ASSETS

    settings = _settings()
    try:
        rows = asyncio.run(_with_database(settings, lambda db: reconcile(db, settings.chains)))
    except RpcError as exc:
        raise click.ClickException(f"a node did not answer: {exc}") from exc
    if not rows:
        click.echo("no chain configured (CHAINS_EVM__<CHAIN>__RPC_URL and __VAULT)")
        return
    table = [("chain", "asset", "ledger custody", "on chain", "difference")]
    for row in rows:
        fmt = ASSETS[row.asset].format
        mark = "  SHORTFALL" if row.shortfall else ""
        diff = f"{'+' if row.difference > 0 else ''}{fmt(row.difference)}{mark}"
        table.append((row.chain, row.asset, fmt(row.ledger), fmt(row.on_chain), diff))
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True)]
        click.echo("  ".join([*cells, line[4]]))
    if any(row.shortfall for row in rows):
        click.echo("shortfall: a chain holds less than the ledger says users deposited", err=True)
        sys.exit(1)


def _amount(_ctx: click.Context, _param: click.Parameter, value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter(f"{value!r} is not a positive number")
    return amount


@main.group()
def devnet() -> None:
    """The embedded demo's local chains (started by `simplrefq serve`)."""


@devnet.command("deposit")
@click.option("--user-id", type=int, required=True, help="The app's user id (`id` in GET /api/me).")
@click.option("--amount", required=True, callback=_amount, help="e.g. 25 or 0.5")
@click.option(
    "--chain", type=click.Choice(["ethereum", "bnb"]), default="ethereum", show_default=True
)
@click.option("--asset", type=click.Choice(["USDT", "native"]), default="USDT", show_default=True)
def devnet_deposit(user_id: int, amount: Decimal, chain: str, asset: str) -> None:
    """Send AMOUNT of test USDT (minted) or of the chain's coin to the user's deposit address,
    as a wallet would, and sweep it into the vault: the running app credits it after the
    chain's confirmations."""
    from backend.chains import devnet as dev

    settings = _settings()
    try:
        sent = dev.deposit(
            settings.app.data_dir,
            settings.chains.forwarder_artifact,
            user_id=user_id,
            amount=amount,
            chain=chain,
            asset=asset,
        )
    except dev.DevnetError as exc:
        raise click.ClickException(str(exc)) from exc
    coin = asset if asset == "USDT" else settings.chains.evm[chain].native_asset
    click.echo(
        f"deposited {amount} {coin} on {chain} for user {user_id}: sent to {sent.address}, "
        f"swept in block {sent.block} (tx {sent.tx_hash}); the app credits it once confirmed"
    )


async def _with_database(settings: Settings, job: Callable[[Database], Awaitable[T]]) -> T:
    from backend.db.engine import Database

    db = Database.connect(settings)
    try:
        return await job(db)
    finally:
        await db.dispose()


@main.group()
def signals() -> None:
    """AI signals: the candle history they learn from, and the models trained on it."""


@signals.command("import")
@click.argument("csv_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--market", help="BASE-QUOTE in capitals, e.g. BTC-USD.")
@click.option("--interval", help="Candle length: 1m, 5m, 15m, 30m, 1h, 4h or 1d.")
@click.option("--bundled", is_flag=True, help="Import the shipped BTC and ETH history.")
def signals_import(
    csv_file: str | None, market: str | None, interval: str | None, bundled: bool
) -> None:
    """Import the candles of CSV_FILE as MARKET at INTERVAL, all or nothing (a malformed file
    or a candle already stored imports none).  The file needs a header naming time, open,
    high, low, close and volume; times in unix seconds, milliseconds or ISO-8601 (UTC)."""
    from pathlib import Path

    from backend.db.uow import unit_of_work
    from backend.errors import DomainError
    from backend.signals import history
    from backend.signals.candles import BUNDLED, CsvRefused, load_bundled, read_ohlcv_csv

    if bundled == bool(csv_file or market or interval):
        raise click.UsageError("give CSV_FILE with --market and --interval, or --bundled alone")
    try:
        if bundled:
            batches = [(*BUNDLED[name], load_bundled(name), "bundled") for name in BUNDLED]
        elif csv_file is None or market is None or interval is None:
            raise click.UsageError("CSV_FILE needs --market and --interval")
        else:
            history.check_market(market)
            history.interval_seconds(interval)
            try:
                batches = [(market, interval, read_ohlcv_csv(Path(csv_file)), "import")]
            except CsvRefused as refused:
                click.echo(f"line {refused.line}: {refused.reason}", err=True)
                sys.exit(1)

        async def save(db: Database) -> list[int]:
            async with unit_of_work(db) as uow:
                return [await history.import_candles(uow, *batch) for batch in batches]

        counts = asyncio.run(_with_database(_settings(), save))
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    for (name, length, candles, _source), count in zip(batches, counts, strict=True):
        first, last = (_utc(int(candles.time[i])) for i in (0, -1))
        click.echo(f"imported {count} candles of {name} {length}: {first} to {last}")


@signals.command("train")
@click.option("--market", default="BTC-USD", show_default=True, help="Market of the history.")
@click.option("--interval", default="1h", show_default=True, help="Candle length.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Model registry directory (default var/signals/models).",
)
def signals_train(market: str, interval: str, out: str | None) -> None:
    """Train the default signal models on the bundled history: a walk-forward evaluation
    (every fold retrained), then the final fit on all of it, saved with its verdicts."""
    import time
    from pathlib import Path

    from backend.signals import pipeline, registry
    from backend.signals.train import TrainConfig, steps

    try:
        candles = pipeline.bundled_history(market, interval)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    root = Path(out) if out else registry.DEFAULT_ROOT
    config = TrainConfig()
    started = time.perf_counter()
    with click.progressbar(
        length=steps(config), label="training", file=sys.stderr, show_eta=False
    ) as bar:

        def track(message: str, done: int) -> None:
            bar.label = message
            bar.update(done)

        trained, entries = pipeline.train_and_save(
            candles, market=market, interval=interval, root=root, config=config, tracker=track
        )
    elapsed = time.perf_counter() - started
    click.echo(trained.evaluation.tables())
    click.echo("")
    for saved in entries:
        click.echo(f"saved {saved.kind} v{saved.version} to {saved.path}")
    click.echo(
        f"trained on {len(candles)} candles of {market} {interval} in {elapsed:.1f} s "
        f"(walk-forward evaluation {trained.evaluation.seconds:.1f} s)"
    )


@signals.command("evaluate")
@click.option("--market", default="BTC-USD", show_default=True, help="Market of the history.")
@click.option("--interval", default="1h", show_default=True, help="Candle length.")
@click.option(
    "--registry",
    "registry_dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Print the evaluation saved with the newest models there instead of running one.",
)
def signals_evaluate(market: str, interval: str, registry_dir: str | None) -> None:
    """Print the walk-forward evaluation of the default models beside their baselines:
    direction (each horizon), volatility against GARCH(1,1), VaR breaches with Kupiec."""
    import time
    from pathlib import Path

    from backend.errors import DomainError
    from backend.signals import pipeline
    from backend.signals.train import TrainConfig, evaluate_models, steps

    if registry_dir is not None:
        try:
            click.echo(pipeline.stored_tables(Path(registry_dir)))
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        return
    try:
        candles = pipeline.bundled_history(market, interval)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    config = TrainConfig()
    started = time.perf_counter()
    with click.progressbar(
        length=steps(config) - 2, label="evaluating", file=sys.stderr, show_eta=False
    ) as bar:

        def track(message: str, done: int) -> None:
            bar.label = message
            bar.update(done)

        evaluation = evaluate_models(candles, config, tracker=track)
    click.echo(evaluation.tables())
    click.echo(f"evaluated in {time.perf_counter() - started:.1f} s")


def _utc(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    sys.exit(main())
