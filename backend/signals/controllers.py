"""HTTP: the current signals (public), one market's with your suggested size, and the record."""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from backend.auth.sessions import PUBLIC, SignedIn
from backend.db.uow import UnitOfWork
from backend.openapi import errors
from backend.signals.schemas import RecordView, RiskView, SignalDetail, SignalView
from backend.signals.service import DEFAULT_RISK, MAX_RISK, Signals

T = TypeVar("T")


def _shaped(value: object, into: type[T]) -> T:
    """A service's plain data as the API's struct (tuples become lists on the way)."""
    return msgspec.convert(value, into, from_attributes=True)


class SignalsController(Controller):
    path = "/api/signals"
    tags = ["signals"]

    @get(opt=PUBLIC)
    async def board(
        self, signals: NamedDependency[Signals], uow: NamedDependency[UnitOfWork]
    ) -> list[SignalView]:
        """The newest signal of every market that has one ([] before the first)."""
        return [_shaped(view, SignalView) for view in await signals.board(uow.read)]

    @get("/{market:str}", responses=errors(404))
    async def market(
        self,
        request: SignedIn,
        market: FromPath[str],
        signals: NamedDependency[Signals],
        uow: NamedDependency[UnitOfWork],
        risk: Annotated[
            float,
            QueryParameter(
                gt=0,
                le=MAX_RISK,
                description="The share of your balance to lose at the 95% VaR.",
            ),
        ] = DEFAULT_RISK,
    ) -> SignalDetail:
        """The market's signal and the position your balance allows at your risk setting;
        404 `unknown_market`, `no_signal`."""
        assert request.user.id is not None
        view = await signals.current(uow.read, market)
        sized = await signals.risk(uow.read, request.user.id, view, risk)
        return SignalDetail(signal=_shaped(view, SignalView), risk=_shaped(sized, RiskView))

    @get("/{market:str}/record", opt=PUBLIC, responses=errors(404))
    async def record(
        self,
        market: FromPath[str],
        signals: NamedDependency[Signals],
        uow: NamedDependency[UnitOfWork],
    ) -> RecordView:
        """The served model's walk-forward backtest beside the market's live record (every
        published signal scored once its horizon passed); 404 `unknown_market`."""
        return _shaped(await signals.record(uow.read, market), RecordView)
