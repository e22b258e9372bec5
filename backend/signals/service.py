"""AI signals as every transport shows them: the board of current calls, one market's call with
the user's suggested position, and the record (the backtest beside the live one).  Plain data:
the REST controllers and the bot's /signals only format what these return, so they agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.config import Settings
from backend.errors import NotFound
from backend.ledger import queries as ledger_queries
from backend.ledger.assets import get_asset
from backend.market.markets import DEFAULT_MARKETS, Market
from backend.signals import card
from backend.signals.card import Backtest, Cards
from backend.signals.history import interval_seconds
from backend.signals.live import LiveRecord, live_record
from backend.signals.models import SignalRecord
from backend.trading.service import UnknownMarket

Reads = Callable[[], AsyncSession]
"""Opens one autocommit read session: ``uow.read`` in a request, ``Database.reads`` in the bot."""
PositionSizer = Callable[[int, float, float], int]

# The share of the balance a user puts at risk per position when they say nothing: 1% is the
# common rule for retail traders; the API takes up to 20% (beyond that it is a bet, not sizing).
DEFAULT_RISK = 0.01
MAX_RISK = 0.2


class NoSignal(NotFound):
    """The market has no signal yet: the models are training, or no candle has closed."""

    code = "no_signal"


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    signal: int
    """+1 bullish, -1 bearish."""
    hit_rate: float | None
    """Out of sample at the signal's horizon; None: too few occurrences to say."""
    occurrences: int


@dataclass(frozen=True, slots=True)
class SignalView:
    """One market's signal, as published on ``signals:<MARKET>`` and served by the API."""

    market: str
    interval: str
    time: int
    horizon: int
    horizon_hours: float
    direction: str
    probability_up: float
    published: bool
    reason: str
    volatility: float
    var95: float
    model_version: int
    patterns: tuple[Pattern, ...]
    source: str
    """Where the candles it read came from: ``feed``, or ``simulator`` when made-up history
    (the demo's backfill) was among them."""
    backtest_hit_rate: float | None
    baseline: str | None
    baseline_hit_rate: float | None

    @property
    def probability(self) -> float:
        """The probability of the direction called (the bot and the messages show this)."""
        return self.probability_up if self.direction == "up" else 1.0 - self.probability_up

    def data(self) -> dict[str, object]:
        """Plain JSON data: the hub event's body, the same fields as the API's."""
        return {
            "market": self.market,
            "interval": self.interval,
            "time": self.time,
            "horizon": self.horizon,
            "horizon_hours": self.horizon_hours,
            "direction": self.direction,
            "probability_up": self.probability_up,
            "published": self.published,
            "reason": self.reason,
            "volatility": self.volatility,
            "var95": self.var95,
            "model_version": self.model_version,
            "patterns": [
                {
                    "name": p.name,
                    "signal": p.signal,
                    "hit_rate": p.hit_rate,
                    "occurrences": p.occurrences,
                }
                for p in self.patterns
            ],
            "source": self.source,
            "backtest_hit_rate": self.backtest_hit_rate,
            "baseline": self.baseline,
            "baseline_hit_rate": self.baseline_hit_rate,
        }


@dataclass(frozen=True, slots=True)
class Risk:
    volatility: float
    var95: float
    balance: str
    """The user's available quote-asset balance, a decimal string."""
    risk_fraction: float
    suggested_size: str
    """In the quote asset: the position whose 95% loss over the horizon is ``risk_fraction``
    of the balance, at most the balance."""


@dataclass(frozen=True, slots=True)
class Record:
    market: str
    status: str
    """``ready``; without a model ``training``, ``failed`` or ``untrained``."""
    backtest: Backtest | None
    live: LiveRecord


def signal_view(row: SignalRecord) -> SignalView:
    return SignalView(
        market=row.market,
        interval=row.interval,
        time=row.time,
        horizon=row.horizon,
        horizon_hours=row.horizon * interval_seconds(row.interval) / 3600,
        direction=row.direction,
        probability_up=row.probability_up,
        published=row.published,
        reason=row.reason,
        volatility=row.volatility,
        var95=row.var95,
        model_version=row.model_version,
        patterns=tuple(
            Pattern(p["name"], int(p["signal"]), p.get("hit_rate"), int(p["occurrences"]))
            for p in row.patterns
        ),
        source=row.source,
        backtest_hit_rate=row.backtest_hit_rate,
        baseline=row.baseline,
        baseline_hit_rate=row.baseline_hit_rate,
    )


class Signals:
    """The signals of the project's markets at one interval and horizon."""

    def __init__(
        self, markets: Sequence[Market], interval: str, horizon: int, models_dir: Path
    ) -> None:
        interval_seconds(interval)  # refuses an unknown one now, not at the first request
        self.markets = {market.symbol: market for market in markets}
        self.interval = interval
        self.horizon = horizon
        self.models_dir = models_dir
        self.cards = Cards(models_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> Signals:
        return cls(
            DEFAULT_MARKETS,
            settings.signals.interval,
            settings.signals.horizon,
            settings.signals_models_dir,
        )

    def market(self, symbol: str) -> Market:
        try:
            return self.markets[symbol]
        except KeyError:
            raise UnknownMarket(f"no market {symbol!r}") from None

    async def board(self, reads: Reads) -> list[SignalView]:
        """The newest signal of every market that has one, in the markets' order."""
        r = SignalRecord
        newest = (
            select(col(r.market), func.max(col(r.time)).label("time"))
            .where(
                col(r.interval) == self.interval,
                col(r.horizon) == self.horizon,
                col(r.market).in_(list(self.markets)),
            )
            .group_by(col(r.market))
            .subquery()
        )
        query = select(r).join(
            newest,
            and_(
                col(r.market) == newest.c.market,
                col(r.time) == newest.c.time,
                col(r.interval) == self.interval,
                col(r.horizon) == self.horizon,
            ),
        )
        async with reads() as session:
            rows = {row.market: row for row in (await session.exec(query)).all()}
        return [signal_view(rows[symbol]) for symbol in self.markets if symbol in rows]

    async def current(self, reads: Reads, symbol: str) -> SignalView:
        """The market's newest signal; ``UnknownMarket``, ``NoSignal``."""
        self.market(symbol)
        r = SignalRecord
        query = (
            select(r)
            .where(
                col(r.market) == symbol,
                col(r.interval) == self.interval,
                col(r.horizon) == self.horizon,
            )
            .order_by(col(r.time).desc())
            .limit(1)
        )
        async with reads() as session:
            row = (await session.exec(query)).first()
        if row is None:
            raise NoSignal(f"no signal for {symbol} yet")
        return signal_view(row)

    async def risk(
        self, reads: Reads, user_id: int, signal: SignalView, fraction: float = DEFAULT_RISK
    ) -> Risk:
        """The signal's risk and the position the user's balance and ``fraction`` allow."""
        if not 0 < fraction <= MAX_RISK:
            raise ValueError(f"the risk fraction lies in (0, {MAX_RISK}]")
        asset = get_asset(self.market(signal.market).quote)
        async with reads() as session:
            balance = (await ledger_queries.balances(session, user_id))[asset.code]
        available = balance.available if balance is not None else 0
        size = (await _position_sizer())(available, fraction, signal.var95)
        return Risk(
            volatility=signal.volatility,
            var95=signal.var95,
            balance=asset.format(available),
            risk_fraction=fraction,
            suggested_size=asset.format(size),
        )

    async def record(self, reads: Reads, symbol: str) -> Record:
        """The backtest of the served model beside the market's live record."""
        self.market(symbol)
        metadata = await self.cards.metadata()
        async with reads() as session:
            live = await live_record(session, symbol, self.interval, self.horizon)
        if metadata is None:
            state = await asyncio.to_thread(card.training_state, self.models_dir)
            return Record(symbol, state, None, live)
        return Record(symbol, "ready", card.backtest(metadata, self.horizon), live)


_sizer: PositionSizer | None = None


async def _position_sizer() -> PositionSizer:
    """``predictors.volatility.position_size``, imported once in a thread: its module loads
    torch, which a web process should not wait for on its event loop."""
    global _sizer
    if _sizer is None:

        def load() -> PositionSizer:
            from backend.signals.predictors.volatility import position_size

            return position_size

        _sizer = await asyncio.to_thread(load)
    return _sizer
