"""Stored candles, the history signals learn from and are checked against, and the signals
made on them with their live outcomes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlmodel import Field, SQLModel

from backend.clock import utcnow
from backend.db.types import UTCDateTime


class CandleSource(StrEnum):
    BUNDLED = "bundled"
    """The history shipped in backend/signals/data/."""
    IMPORT = "import"
    """A CSV file someone imported (``simplrefq signals import``)."""
    FEED = "feed"
    """The project's own market feed, recorded as each candle closes."""
    SIMULATOR = "simulator"
    """Past hours made up for a simulator market that had too little history (the demo's
    backfill): never a real market's, and labelled so wherever a signal read them."""


class SignalCandle(SQLModel, table=True):
    """One OHLCV candle of a market at an interval.

    Prices and volumes are floats, unlike everywhere else in the project: they are inputs to
    analysis, never money, and no balance or order is ever computed from them."""

    __tablename__ = "signal_candles"
    __table_args__ = (
        CheckConstraint(
            "source IN ('bundled', 'import', 'feed', 'simulator')",
            name="ck_signal_candles_source",
        ),
        # The same rules the CSV reader applies, so no path (or stray SQL) stores a candle
        # that contradicts itself.
        CheckConstraint(
            "low > 0 AND high >= low AND open >= low AND open <= high"
            " AND close >= low AND close <= high AND volume >= 0",
            name="ck_signal_candles_ohlcv",
        ),
    )

    market: str = Field(sa_column=Column(String(16), primary_key=True))
    """``BASE-QUOTE``, e.g. BTC-USD: any market with history, traded here or not."""
    interval: str = Field(sa_column=Column(String(8), primary_key=True))
    """``1h``, ``4h``, ``1d``... (``backend.signals.history.INTERVALS``)."""
    time: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The candle's opening time in unix seconds (UTC), a multiple of the interval."""
    source: str = Field(sa_column=Column(String(16), nullable=False))
    open: float = Field(sa_column=Column(Double, nullable=False))
    high: float = Field(sa_column=Column(Double, nullable=False))
    low: float = Field(sa_column=Column(Double, nullable=False))
    close: float = Field(sa_column=Column(Double, nullable=False))
    volume: float = Field(sa_column=Column(Double, nullable=False))
    """In the base asset (BTC for BTC-USD)."""


class SignalRecord(SQLModel, table=True):
    """One signal as it was published, and, once its horizon has passed, how it turned out.

    The key is the candle it was made on, so a worker that scores the same candle twice (a
    restart, two leaders for a moment) stores and publishes it once: the first word stands."""

    __tablename__ = "signal_records"
    __table_args__ = (
        CheckConstraint("direction IN ('up', 'down')", name="ck_signal_records_direction"),
        CheckConstraint(
            "probability_up >= 0 AND probability_up <= 1", name="ck_signal_records_probability"
        ),
        CheckConstraint("horizon > 0", name="ck_signal_records_horizon"),
    )

    market: str = Field(sa_column=Column(String(16), primary_key=True))
    interval: str = Field(sa_column=Column(String(8), primary_key=True))
    horizon: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    """In bars of ``interval``."""
    time: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The scored candle's opening time, unix seconds (its ``signal_candles`` key)."""
    close: float = Field(sa_column=Column(Double, nullable=False))
    """The scored candle's close: the outcome is the close ``horizon`` bars later against it."""
    probability_up: float = Field(sa_column=Column(Double, nullable=False))
    direction: str = Field(sa_column=Column(String(4), nullable=False))
    volatility: float = Field(sa_column=Column(Double, nullable=False))
    var95: float = Field(sa_column=Column(Double, nullable=False))
    patterns: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    """The candlestick patterns on the scored candle with their backtest hit rates."""
    model_version: int = Field(sa_column=Column(Integer, nullable=False))
    risk_version: int = Field(sa_column=Column(Integer, nullable=False))
    published: bool = Field(sa_column=Column(Boolean, nullable=False))
    """The direction model showed an edge at this horizon out of sample."""
    reason: str = Field(sa_column=Column(Text, nullable=False))
    backtest_hit_rate: float | None = Field(default=None, sa_column=Column(Double))
    """The model's out-of-sample hit rate at this horizon, beside the best baseline's."""
    baseline: str | None = Field(default=None, sa_column=Column(String(32)))
    baseline_hit_rate: float | None = Field(default=None, sa_column=Column(Double))
    source: str = Field(sa_column=Column(String(16), nullable=False))
    """Where the candles it read came from (``CandleSource``): ``simulator`` when any of them
    was made up by the backfill."""
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    outcome_up: bool | None = Field(default=None, sa_column=Column(Boolean))
    """Whether the close ``horizon`` bars later was higher; None until then."""
    hit: bool | None = Field(default=None, sa_column=Column(Boolean))
    """Whether ``direction`` called it; None until scored, or when the candle is missing."""
    scored_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """When the outcome was settled; set with a None outcome when that candle never came."""
