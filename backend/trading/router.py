"""Where a trading request runs: on this process's books when it runs them, else forwarded over
the Redis bus to the process that does (``bus.py``).  Without Redis there is one process, and
it runs the books.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from decimal import Decimal

from backend.trading.bus import ForwardedRequest, Reply, TopUp, TradingBus
from backend.trading.commands import WITHDRAWING, OrderRequest, Withdraw
from backend.trading.markets import TradingMarket
from backend.trading.service import FAUCET_LEVELS, FaucetOff, Spawn, Topped, Trading
from backend.trading.writer import Outcome


class TradingRouter:
    """Trading as the rest of the app sees it: markets, orders and demo funds, wherever the
    books run."""

    def __init__(self, trading: Trading, bus: TradingBus | None = None) -> None:
        """``bus``: with Redis, how the processes that do not run the books reach the one
        that does."""
        self._trading = trading
        self._bus = bus

    def _forwarded(self) -> TradingBus | None:
        """The bus, when the books run in another process."""
        return None if self._trading.running else self._bus

    @property
    def demo(self) -> bool:
        """Whether demo funds may be minted (never in production)."""
        return self._trading.demo

    @property
    def markets(self) -> Mapping[str, TradingMarket]:
        return self._trading.markets

    def market(self, symbol: str) -> TradingMarket:
        """The market named ``symbol``; raises UnknownMarket."""
        return self._trading.market(symbol)

    async def submit(self, symbol: str, request: OrderRequest) -> Outcome:
        bus = self._forwarded()
        if bus is None:
            return await self._trading.submit(symbol, request)
        self._trading.market(symbol)  # an unknown market is refused here, not forwarded
        return await bus.submit(symbol, request)

    async def top_up(
        self,
        user_id: int,
        assets: Collection[str] | None = None,
        to: Mapping[str, Decimal] = FAUCET_LEVELS,
    ) -> list[Topped]:
        """Demo funds (``Trading.top_up``), minted where the books run."""
        bus = self._forwarded()
        if bus is None:
            return await self._trading.top_up(user_id, assets, to)
        topped = await bus.top_up(user_id, assets, to)
        return [Topped(asset, amount) for asset, amount in topped]

    async def withdraw(self, request: Withdraw) -> None:
        """Debit funds leaving the books (``Trading.withdraw``), where the books run."""
        bus = self._forwarded()
        if bus is None:
            await self._trading.withdraw(request)
        else:
            await bus.withdraw(request)

    async def serve(self, market: str, request: ForwardedRequest) -> Reply:
        """A request another process forwarded here (the bus's ``Serve``)."""
        if isinstance(request, TopUp):
            # The faucet's own levels, whatever the message says: Redis is trusted to carry
            # requests, not to set how much is minted.
            if not self._trading.settings.faucet:
                raise FaucetOff("the faucet is for the demo only")
            topped = await self._trading.top_up(request.user_id, request.assets)
            return [(t.asset, t.amount) for t in topped]
        if isinstance(request, Withdraw):
            # Where the money goes is not Redis's to say: always to the withdrawals in flight.
            await self._trading.withdraw(replace(request, destination=WITHDRAWING))
            return None
        return await self._trading.submit(market, request)

    def listen(self, spawn: Spawn) -> None:
        """Read the answers to this process's forwarded requests, for as long as it lives."""
        if self._bus is not None:
            spawn(self._bus.listen(), "trading-replies")

    async def start(self, spawn: Spawn) -> None:
        """Run the books here (this process was elected): rebuild them, let the writers run,
        and take the requests the other processes forward."""
        await self._trading.start(spawn)
        if self._bus is not None:
            spawn(self._bus.consume(self.serve), "trading-bus")

    def stop(self) -> None:
        """The books no longer run here (the tasks ``start`` spawned are cancelled); requests
        are forwarded again."""
        self._trading.stop()

    async def close(self) -> None:
        if self._bus is not None:
            await self._bus.close()
