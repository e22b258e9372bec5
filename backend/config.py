"""Typed settings, read once from the environment and injected where needed.

Each group has its own environment prefix (``APP_``, ``DATABASE_``, ``REDIS_``, ``AUTH_``,
``HUB_``, ``BOT_``, ``RATELIMIT_``, ``SIGNALS_``, ``WALLETS_``, ``CHAINS_``, ``LOG_``).  The
README documents every field as a table.
"""

from __future__ import annotations

import os
import re
import secrets
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
# 32 URL-safe characters carry ~190 bits: beyond brute force for an HMAC key or a shared secret.
MIN_SECRET_LENGTH = 32
_SECRET = re.compile(r"^[A-Za-z0-9_-]+$")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APP_")

    env: Environment = Environment.DEVELOPMENT
    """development, test or production. Production refuses default secrets and demo sign-in."""
    name: str = "SimplRefQ"
    """Shown in the page title and bot messages."""
    host: str = "127.0.0.1"
    """Address `simplrefq serve` binds to."""
    port: int = 8000
    """Port `simplrefq serve` listens on."""
    workers: int = 1
    """Server processes for `simplrefq serve` (several need PostgreSQL and Redis)."""
    public_url: str = ""
    """Public HTTPS URL of the mini-app (the bot's web_app buttons). Defaults to http://host:port."""
    data_dir: Path = ROOT / "data"
    """Folder for the embedded SQLite database."""
    demo_login: bool = True
    """Offer a demo user where Telegram is absent (a normal browser). Never in production."""
    forwarded_allow_ips: str = ""
    """Proxies whose X-Forwarded-For/-Proto are trusted (comma-separated addresses of the TLS
    proxy). Empty trusts none: otherwise anything on the host could pick its own address past
    the per-address limits. Behind a proxy, set it, or every client shares the proxy's address."""
    metrics_allow_ips: str = "127.0.0.1,::1"
    """Client addresses that may read /metrics (comma-separated; `*` for any)."""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATABASE_")

    url: str = ""
    """SQLAlchemy async URL, e.g. postgresql+asyncpg://user@127.0.0.1:5432/db.
    Empty means the embedded SQLite file under APP_DATA_DIR."""
    pool_size: int = 10
    """Connections per process kept open to PostgreSQL."""
    echo: bool = False
    """Log every SQL statement."""


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDIS_")

    url: str = ""
    """redis://127.0.0.1:6379/0. Empty means in-process state (embedded default, one process)."""
    key_prefix: str = "simplrefq"
    """Prefix of every key and channel, so several deployments can share one Redis."""


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_")

    jwt_secret: str = ""
    """HS256 key for session tokens (32+ characters). Required in production; elsewhere a
    random one is made once and kept in APP_DATA_DIR."""
    token_ttl_seconds: int = 24 * 3600
    """Lifetime of a session token (a day: a mini-app session is re-signed on every open)."""
    init_data_max_age_seconds: int = 3600
    """initData older than this is refused (Telegram's own advice is to bound it)."""
    telegram_public_key: str = "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d"
    """Hex Ed25519 key that signs initData's `signature` field (Telegram production key)."""

    @field_validator("telegram_public_key")
    @classmethod
    def _hex_key(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hex digits (an Ed25519 public key)")
        return value.lower()

    @cached_property
    def telegram_public_key_bytes(self) -> bytes:
        return bytes.fromhex(self.telegram_public_key)

    socket_recheck_seconds: float = Field(default=30.0, gt=0)
    """An open WebSocket re-checks its session this often (and at its expiry): a revoked or
    expired session loses its private topics within this time."""

    cookie_secure: bool = True
    """Send the session cookie only over HTTPS (browsers also allow it on localhost)."""
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    """Inside Telegram the page sends its token as a header, so no cross-site cookie is needed;
    `none` is refused in production (it would expose cookie-authenticated writes to CSRF)."""


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_")

    max_sockets_per_address: int = Field(default=32, ge=1)
    """Open WebSockets per client address and server process (a family's phones behind one
    NAT each hold one or two); the next one is closed with 4029."""


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_")

    token: str = ""
    """Bot API token from @BotFather. Empty: the app runs and the bot is off."""
    username: str = ""
    """The bot's @username without @, for t.me links."""
    webhook_secret: str = ""
    """Checked against X-Telegram-Bot-Api-Secret-Token on the webhook route (32+ characters
    of A-Z a-z 0-9 _ -). Required in production with a token; elsewhere made once."""
    api_server: str = ""
    """Bot API base URL; empty means https://api.telegram.org (tests point it at a fake)."""

    @property
    def bot_id(self) -> int | None:
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else None


class RateLimitSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RATELIMIT_")

    enabled: bool = True
    """Switch every limit off (benchmarks only)."""
    signin_per_ip: str = "30/minute"
    """Sign-in attempts per client address (a phone opens the app a few times a minute)."""
    signin_per_user: str = "20/minute"
    """Sign-ins per Telegram account (limits replays of one captured initData)."""
    write_per_user: str = "120/minute"
    """Write requests (POST/PUT/PATCH/DELETE) per signed-in user."""
    write_per_ip: str = "600/minute"
    """Write requests per client address (covers many users behind one NAT)."""


class MarketSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKET_")

    feed: Literal["simulator", "off"] = "simulator"
    """Price source for the `prices` and candle topics (one process runs it, elected in Redis)."""
    interval_seconds: float = Field(default=0.5, gt=0)
    """How often the feed publishes."""


class TradingSettings(BaseSettings):
    """The order books (backend/trading/)."""

    model_config = SettingsConfigDict(env_prefix="TRADING_")

    enabled: bool = True
    """Run the matching engine (one process runs it, elected in Redis; others forward orders)."""
    maker_fee_bps: int = Field(default=10, ge=0, le=1000)
    """Fee on the resting side of a trade, in basis points of its value (quote asset)."""
    taker_fee_bps: int = Field(default=20, ge=0, le=1000)
    """Fee on the incoming side; at least the maker fee, so a reservation at the taker rate
    covers an order whatever side of its trades it ends up on."""
    batch_max: int = Field(default=500, ge=1, le=10_000)
    """Most commands one market writes in one transaction (group commit)."""
    snapshot_every: int = Field(default=5_000, ge=10)
    """A book snapshot is stored after this many journaled commands: a restart replays at most
    this many."""
    book_depth: int = Field(default=20, ge=1, le=200)
    """Price levels per side on the `book:<MARKET>` topic."""
    demo_funds: bool = True
    """Mint demo funds out of `sys:faucet`: the faucet's top-ups and the market maker's
    balances. Never in production, whatever this says (`Settings.demo_funds`)."""
    market_maker: bool = True
    """Quote both sides of every market around the reference price (the demo's liquidity);
    only where demo funds are minted."""
    faucet: bool = True
    """Demo funds on request (`POST /api/faucet`); only where demo funds are minted."""
    halted: list[str] = Field(default_factory=list)
    """Markets closed to new orders and amends (cancels still work), e.g. `["BNB-USDT"]`."""
    order_timeout_seconds: float = Field(default=5.0, gt=0)
    """How long a request waits for its market's writer before answering 503."""

    @model_validator(mode="after")
    def _taker_covers_maker(self) -> TradingSettings:
        if self.taker_fee_bps < self.maker_fee_bps:
            raise ValueError("TRADING_TAKER_FEE_BPS must be at least TRADING_MAKER_FEE_BPS")
        return self


class PointsSettings(BaseSettings):
    """The earning rules (backend/points/rules.py reads them; nothing else does)."""

    model_config = SettingsConfigDict(env_prefix="POINTS_")

    checkin: int = Field(default=100, ge=0)
    """Points for the first daily check-in."""
    checkin_streak_bonus: int = Field(default=20, ge=0)
    """Extra points per consecutive day after the first."""
    checkin_streak_cap: int = Field(default=7, ge=1)
    """The streak bonus stops growing after this many days (a week of habit, then flat)."""
    first_trade: int = Field(default=500, ge=0)
    """Points for a user's first trade, once."""
    wallet_link: int = Field(default=250, ge=0)
    """Points for linking a wallet, once."""
    volume_taker_per_usdt: int = Field(default=1, ge=0)
    """Points per whole USDT of traded notional, taking liquidity."""
    volume_maker_per_usdt: int = Field(default=2, ge=0)
    """Points per whole USDT of traded notional, providing liquidity (worth more to the book)."""
    referral_bps: tuple[int, int] = (1000, 300)
    """The referrer's share of a referee's points, in basis points: level 1, level 2."""
    referral_hold_days: int = Field(default=30, ge=1, le=366)
    """A referral reward waits this long for its referee to become active, then is voided."""
    activation_checkin_days: int = Field(default=3, ge=1)
    """Check-in days that make a referee active (a first trade does it at once)."""
    farm_min_referees: int = Field(default=10, ge=1)
    """Referrers with at least this many referees past the grace period are examined..."""
    farm_inactive_share: float = Field(default=0.8, gt=0, le=1)
    """...and flagged when this share or more of them never became active."""
    farm_grace_days: int = Field(default=7, ge=0)
    """Referees younger than this are not yet counted as inactive."""
    moderator_grant_cap: int = Field(default=10_000, ge=1)
    """The most points a moderator may grant or claw back in one action (admins: no cap)."""

    @field_validator("referral_bps")
    @classmethod
    def _shares(cls, value: tuple[int, int]) -> tuple[int, int]:
        if any(share < 0 for share in value) or sum(value) > 10_000:
            raise ValueError("referral shares are 0-10000 basis points, together at most 10000")
        return value


class NotifySettings(BaseSettings):
    """Delivery of bot notifications from the outbox (backend/notify/)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_")

    per_second: float = Field(default=30.0, gt=0)
    """Messages per second over all chats (Telegram's broadcast limit is about 30)."""
    per_chat_per_second: float = Field(default=0.95, gt=0)
    """Messages per second to one chat.  Telegram allows one, counted as they arrive; network
    jitter can bring two sends a few milliseconds closer, so the default aims 5% under."""
    max_attempts: int = Field(default=6, ge=1, le=50)
    """Tries on server or network errors before a notification is dead-lettered."""
    backoff_seconds: float = Field(default=2.0, gt=0)
    """The first retry's delay; each later one doubles it (with jitter)."""
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    """The longest delay between two tries."""
    lease_seconds: float = Field(default=60.0, gt=0)
    """A claimed notification not marked sent by then (its worker died) is claimed again."""
    concurrency: int = Field(default=32, ge=1, le=500)
    """Messages one worker has in flight at once (the limiter spaces them)."""
    digest_seconds: float = Field(default=900.0, gt=0)
    """How long a topic in digest mode gathers messages before they go out as one (a burst of
    small fills within 15 minutes becomes a single message)."""
    digest_max_rows: int = Field(default=200, ge=1, le=1000)
    """The most rows one digest message takes (a digest shows a few and counts the rest)."""
    in_app: bool = True
    """Run a delivery worker inside each server process (needs BOT_TOKEN); turn off when
    `simplrefq worker notify` runs separately."""


class SignalsSettings(BaseSettings):
    """AI signals (backend/signals/): the candles recorded, the models served, the worker."""

    model_config = SettingsConfigDict(env_prefix="SIGNALS_")

    enabled: bool = True
    """Record the feed's candles and score them where the feed runs (the elected process)."""
    in_app: bool = True
    """Score inside the elected server process; turn off when `simplrefq worker signals` runs
    separately (the feed's process still records the candles)."""
    interval: Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"] = "1h"
    """Candle length that is recorded and scored; the models must be trained on it."""
    models_dir: Path | None = None
    """Model registry the worker serves from; empty means APP_DATA_DIR/signals/models."""
    train_if_missing: bool = True
    """Train the default models once (on the bundled BTC-USD history, a few minutes of CPU in a
    thread) when the registry is empty: the demo's convenience.  Never under APP_ENV=test, whose
    servers start by the dozen (tests train tiny models themselves), nor in production, where a
    minute of training and torch's memory in a serving process would slow every client of that
    worker (measured: the hub's p99 went from 8 ms to 0.5 s): run `simplrefq signals train`."""
    backfill_hours: int = Field(default=240, ge=0, le=24 * 366)
    """A simulator market with fewer candles than this gets that many past hours of GBM with
    the simulator's own volatility, stored as source `simulator` (labelled so everywhere), so
    the demo shows signals at once: the models read 199 candles.  0 turns it off."""
    horizon: int = Field(default=4, ge=1, le=168)
    """Bars ahead of the signal that is stored, published and notified (a horizon the models
    were trained for: 1 or 4 with the defaults).  Four hours: one hour is mostly noise."""
    poll_seconds: float = Field(default=30.0, gt=0)
    """How often the worker looks for closed candles it has not scored yet (the in-process
    feed also wakes it as each candle closes)."""


class WalletsSettings(BaseSettings):
    """Wallets linked to users (backend/chains/): TON Connect ton_proof, Sign-In with Ethereum."""

    model_config = SettingsConfigDict(env_prefix="WALLETS_")

    challenge_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    """How long an issued ton_proof payload or SIWE nonce may be used (once): long enough to
    open a wallet app and approve, short enough that a leaked one is soon worthless."""
    proof_max_age_seconds: int = Field(default=900, ge=30, le=86400)
    """A proof signed longer ago than this is refused (TON Connect's own examples allow 15
    minutes; the challenge's expiry usually bounds it sooner)."""
    clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    """How far in the future a proof's timestamp may be (phones' clocks drift)."""
    siwe_chain_ids: list[int] = Field(default_factory=lambda: [1, 56])
    """EVM chains a SIWE message may name: Ethereum and BNB Smart Chain, the ones we serve."""


# An EVM address (or nothing): a typo is refused at start, not met as a 500 on first use.
EVM_ADDRESS = r"^(0x[0-9a-fA-F]{40})?$"


class WithdrawalLimits(BaseModel):
    """What one asset's withdrawals on one chain cost and may be, in the asset's units."""

    fee: Decimal = Field(ge=0)
    """Taken from the amount: the user receives the amount less the fee (the operator pays gas)."""
    minimum: Decimal = Field(gt=0)
    maximum: Decimal = Field(gt=0)
    """The most one withdrawal may be."""
    daily: Decimal = Field(gt=0)
    """The most one user may withdraw in 24 hours (requests not cancelled, rejected or failed)."""
    approval_above: Decimal = Field(ge=0)
    """Larger withdrawals wait for an admin's approval."""

    @model_validator(mode="after")
    def _ordered(self) -> WithdrawalLimits:
        if not self.fee < self.minimum <= self.maximum <= self.daily:
            raise ValueError("withdrawal limits need fee < minimum <= maximum <= daily")
        return self


# Fees near what a transfer costs the operator in gas; approvals above what one user would
# ordinarily move in a day.
WITHDRAWAL_DEFAULTS = {
    "USDT": WithdrawalLimits(
        fee=Decimal(1),
        minimum=Decimal(10),
        maximum=Decimal(50_000),
        daily=Decimal(100_000),
        approval_above=Decimal(10_000),
    ),
    "ETH": WithdrawalLimits(
        fee=Decimal("0.001"),
        minimum=Decimal("0.01"),
        maximum=Decimal(20),
        daily=Decimal(40),
        approval_above=Decimal(4),
    ),
    "BNB": WithdrawalLimits(
        fee=Decimal("0.001"),
        minimum=Decimal("0.02"),
        maximum=Decimal(100),
        daily=Decimal(200),
        approval_above=Decimal(20),
    ),
}


class EvmChainSettings(BaseModel):
    """One EVM chain the vault is deployed on (backend/chains/deposits.py watches it)."""

    chain_id: int = Field(ge=1)
    rpc_url: str = ""
    """JSON-RPC endpoint; empty: the chain is listed but not watched."""
    vault: str = Field(default="", pattern=EVM_ADDRESS)
    """The Vault contract's address (its `Deposited` events are the deposits)."""
    usdt: str = Field(default="", pattern=EVM_ADDRESS)
    """The USDT token's address on this chain."""
    usdt_decimals: int = Field(default=6, ge=6, le=36)
    """USDT's decimals on this chain (6 on Ethereum, 18 on BNB Chain), scaled to the ledger's
    (6: a token with fewer could not be paid out exactly)."""
    confirmations: int = Field(default=12, ge=1, le=1000)
    """Blocks, the deposit's own included, before a deposit is credited."""
    start_block: int = Field(default=0, ge=0)
    """The vault's deployment block: where a watcher with no cursor yet starts reading."""
    min_deposit: Decimal = Decimal("1")
    """Smaller USDT deposits are recorded and never credited (their fees would cost more)."""
    native_asset: str = Field(default="", pattern=r"^([A-Z]{2,10})?$")
    """The ledger asset the chain's native coin is credited as; empty: BNB on BNB Chain (56, and
    its testnet 97), ETH elsewhere.  18 decimals on chain, scaled down to the asset's units."""
    min_native_deposit: Decimal = Decimal("0.001")
    """Smaller native-coin deposits are recorded and never credited (a few dollars of ETH or
    BNB: below that the fees to move it would cost more)."""
    withdrawals: dict[str, WithdrawalLimits] = Field(default_factory=dict)
    """Per asset (`USDT`, the native asset): fee, minimum, maximum, daily limit and the
    approval threshold; what is given is laid over `WITHDRAWAL_DEFAULTS`."""

    @model_validator(mode="after")
    def _native(self) -> EvmChainSettings:
        if not self.native_asset:
            self.native_asset = "BNB" if self.chain_id in (56, 97) else "ETH"
        given = self.withdrawals
        self.withdrawals = {
            asset: given.get(asset) or WITHDRAWAL_DEFAULTS[asset]
            for asset in ("USDT", self.native_asset)
            if asset in given or asset in WITHDRAWAL_DEFAULTS
        }
        return self


def _default_chains() -> dict[str, EvmChainSettings]:
    # Ethereum: 12 blocks (~2.5 min, past any reorg seen since the merge short of finality);
    # BNB Chain: 15 blocks (~45 s at 3 s blocks), the figure exchanges commonly use.
    return {
        "ethereum": EvmChainSettings(chain_id=1, usdt_decimals=6, confirmations=12),
        "bnb": EvmChainSettings(chain_id=56, usdt_decimals=18, confirmations=15),
    }


class ChainsSettings(BaseSettings):
    """On-chain deposits (backend/chains/): the vault on each EVM chain and how it is read."""

    model_config = SettingsConfigDict(env_prefix="CHAINS_", env_nested_delimiter="__")

    evm: dict[str, EvmChainSettings] = Field(default_factory=_default_chains)
    """The chains by name (`ethereum`, `bnb`), e.g. `CHAINS_EVM__ETHEREUM__RPC_URL`: what is
    given is laid over the defaults of a chain we know."""
    poll_seconds: float = Field(default=4.0, gt=0)
    """How often a watcher asks its node for new blocks (about a BNB Chain block)."""
    max_blocks_per_scan: int = Field(default=2_000, ge=1, le=100_000)
    """Most blocks one `eth_getLogs` call covers (public nodes refuse wider ranges)."""
    forwarder_artifact: Path = ROOT / "contracts" / "evm" / "artifacts" / "DepositForwarder.json"
    """The compiled DepositForwarder: its creation code gives each user's deposit address."""
    devnet: bool = True
    """The embedded demo starts two local chains (anvil as Ethereum and BNB Chain, the vault
    deployed, state under APP_DATA_DIR/devnet) when no RPC URL is set.  Never in production."""
    operator_key: SecretStr = SecretStr("")
    """The operator's private key (hex) that submits withdrawals to every vault; it must hold
    the vault's OPERATOR_ROLE and gas.  Empty (and no key file): withdrawals are not sent."""
    operator_key_file: Path | None = None
    """Read the operator key from this file instead (a mounted secret)."""
    withdrawal_deadline_seconds: int = Field(default=86_400, ge=300, le=30 * 86_400)
    """How long a user's signed withdrawal stays valid on chain (the vault refuses it after)."""
    stuck_seconds: float = Field(default=90.0, gt=0)
    """A withdrawal transaction with no receipt for this long is sent again, same nonce,
    higher fees."""
    fee_bump_percent: int = Field(default=25, ge=10, le=500)
    """How much a replacement raises both EIP-1559 fees (nodes want at least 10%)."""
    max_fee_gwei: Decimal = Field(default=Decimal(500), gt=0)
    """The most the operator pays per gas: a withdrawal is not sent above it."""
    sweep_seconds: float = Field(default=60.0, gt=0)
    """How often the operator looks at the deposit addresses users were shown and sweeps what
    arrived (at least the chain's minimum deposit) into the vault."""

    @field_validator("operator_key")
    @classmethod
    def _key_shape(cls, key: SecretStr) -> SecretStr:
        value = key.get_secret_value().strip()
        if value and not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", value):
            raise ValueError("CHAINS_OPERATOR_KEY must be a private key: 64 hex digits")
        return key

    def pays(self, chain: EvmChainSettings) -> bool:
        """Whether withdrawals are taken on ``chain``: a node, a vault, and an operator key to
        send them with (a key file counts when it is there)."""
        if not (chain.rpc_url and chain.vault):
            return False
        if self.operator_key_file is not None:
            return self.operator_key_file.is_file()
        return bool(self.operator_key.get_secret_value().strip())

    def operator_secret(self) -> str:
        """The operator key, from the file when one is named; empty when there is none."""
        if self.operator_key_file is not None:
            return self.operator_key_file.read_text().strip()
        return self.operator_key.get_secret_value().strip()

    @field_validator("evm", mode="before")
    @classmethod
    def _over_defaults(cls, given: object) -> object:
        if not isinstance(given, dict):
            return given
        defaults = _default_chains()
        merged: dict[str, object] = {}
        for name, fields in given.items():
            known = defaults.get(name)
            if known is not None and isinstance(fields, dict):
                merged[name] = known.model_dump() | fields
            else:
                merged[name] = fields
        return {**{n: c.model_dump() for n, c in defaults.items()}, **merged}


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOG_")

    level: str = "INFO"
    """Root log level."""
    requests: bool = True
    """Write one access-log line per HTTP request."""


class Settings(BaseSettings):
    app: AppSettings = Field(default_factory=AppSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    points: PointsSettings = Field(default_factory=PointsSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    signals: SignalsSettings = Field(default_factory=SignalsSettings)
    wallets: WalletsSettings = Field(default_factory=WalletsSettings)
    chains: ChainsSettings = Field(default_factory=ChainsSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        """Production must be given its secrets; elsewhere they are made once and kept, so a
        checkout never runs on a secret that anybody can read in the repository."""
        if self.app.env is not Environment.PRODUCTION:
            if not self.auth.jwt_secret:
                self.auth.jwt_secret = _kept_secret(self.app.data_dir, "jwt")
            if not self.bot.webhook_secret:
                self.bot.webhook_secret = _kept_secret(self.app.data_dir, "webhook")
            return self
        problems = []
        if len(self.auth.jwt_secret) < MIN_SECRET_LENGTH:
            problems.append(
                f"AUTH_JWT_SECRET must be a random value of {MIN_SECRET_LENGTH}+ characters"
            )
        webhook = self.bot.webhook_secret
        if self.bot.token and (len(webhook) < MIN_SECRET_LENGTH or not _SECRET.match(webhook)):
            problems.append(
                f"BOT_WEBHOOK_SECRET must be {MIN_SECRET_LENGTH}+ characters of A-Z a-z 0-9 _ - "
                "when BOT_TOKEN is set"
            )
        if not self.database.url.startswith("postgresql"):
            problems.append("DATABASE_URL must point at PostgreSQL")
        if not self.redis.url:
            problems.append("REDIS_URL must be set")
        if not self.ratelimit.enabled:
            problems.append("RATELIMIT_ENABLED cannot be off")
        if not self.auth.cookie_secure or self.auth.cookie_samesite == "none":
            problems.append("the session cookie must be Secure and SameSite lax or strict")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.app.data_dir / 'simplrefq.db'}"

    @property
    def demo_login(self) -> bool:
        return self.app.demo_login and self.app.env is not Environment.PRODUCTION

    @property
    def demo_funds(self) -> bool:
        """Whether demo funds may be minted (the faucet, the market maker): the one switch
        both obey, read once where the app is assembled.  On except in production."""
        return self.trading.demo_funds and self.app.env is not Environment.PRODUCTION

    @property
    def signals_models_dir(self) -> Path:
        return self.signals.models_dir or self.app.data_dir / "signals" / "models"

    @property
    def train_signal_models(self) -> bool:
        """Whether the worker trains the default models into an empty registry."""
        serving = self.app.env in (Environment.TEST, Environment.PRODUCTION)
        return self.signals.train_if_missing and not serving

    @property
    def embedded(self) -> bool:
        """True when running on the embedded default (no PostgreSQL, no Redis)."""
        return not self.database.url and not self.redis.url


def _kept_secret(data_dir: Path, name: str) -> str:
    path = data_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(MIN_SECRET_LENGTH)
    # Created with owner-only access; a racing second process keeps the first one's secret.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(value)
    return value


def load_settings() -> Settings:
    return Settings()
