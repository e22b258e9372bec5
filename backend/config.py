"""Typed settings, read once from the environment and injected where needed.

Each group has its own environment prefix (``APP_``, ``DATABASE_``, ``REDIS_``, ``AUTH_``,
``BOT_``, ``RATELIMIT_``, ``LOG_``).  The README documents every field as a table.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Refused outside development: a token signed with a public secret is no token at all.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"  # noqa: S105
DEV_WEBHOOK_SECRET = "dev-only-webhook-secret"  # noqa: S105

ROOT = Path(__file__).resolve().parent.parent


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


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_")

    jwt_secret: str = DEV_JWT_SECRET
    """HS256 key for session tokens. Required outside development."""
    token_ttl_seconds: int = 24 * 3600
    """Lifetime of a session token (a day: a mini-app session is re-signed on every open)."""
    init_data_max_age_seconds: int = 3600
    """initData older than this is refused (Telegram's own advice is to bound it)."""
    telegram_public_key: str = "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d"
    """Hex Ed25519 key that signs initData's `signature` field (Telegram production key)."""
    cookie_secure: bool = True
    """Send the session cookie only over HTTPS (browsers also allow it on localhost)."""
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    """`none` is needed when the app is framed cross-site (Telegram Web)."""


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_")

    token: str = ""
    """Bot API token from @BotFather. Empty: the app runs and the bot is off."""
    username: str = ""
    """The bot's @username without @, for t.me links."""
    webhook_secret: str = DEV_WEBHOOK_SECRET
    """Checked against X-Telegram-Bot-Api-Secret-Token on the webhook route."""
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
    """Sign-in attempts per client address."""
    write_per_user: str = "120/minute"
    """Write requests (POST/PUT/PATCH/DELETE) per signed-in user."""
    write_per_ip: str = "600/minute"
    """Write requests per client address (covers many users behind one NAT)."""


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
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.app.env is not Environment.PRODUCTION:
            return self
        problems = []
        if self.auth.jwt_secret == DEV_JWT_SECRET or len(self.auth.jwt_secret) < 32:
            problems.append("AUTH_JWT_SECRET must be set to a random value of 32+ characters")
        if self.bot.token and self.bot.webhook_secret == DEV_WEBHOOK_SECRET:
            problems.append("BOT_WEBHOOK_SECRET must be set when BOT_TOKEN is")
        if not self.database.url:
            problems.append("DATABASE_URL must point at PostgreSQL")
        if not self.redis.url:
            problems.append("REDIS_URL must be set")
        if not self.ratelimit.enabled:
            problems.append("RATELIMIT_ENABLED cannot be off")
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
    def embedded(self) -> bool:
        """True when running on the embedded default (no PostgreSQL, no Redis)."""
        return not self.database.url and not self.redis.url


def load_settings() -> Settings:
    return Settings()
