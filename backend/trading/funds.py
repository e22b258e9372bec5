"""What each trader can spend, mirrored in memory by the process that runs the books.

The risk check happens before matching and must not wait for the database, so the writers
check and debit this mirror synchronously; the ledger then records the same moves in the
batch's transaction.  The mirror starts from the ledger (``load``), and only the books debit a
trading asset, so it never shows more than the ledger holds:

* a debit (an order's hold) counts at once, so no two orders spend the same money;
* a credit (a trade's proceeds, a released hold, a deposit) counts only once its batch has
  committed (``settle``): another market's batch may commit first, and must not spend money
  the ledger does not show yet;
* a batch that fails forgets the balances it touched (``drop``): the ledger refused something
  the mirror allowed, or the database is down, and either way the next use reads the ledger.

A pair with moves in flight is never reloaded: the ledger does not show those moves yet, and
reading it would undo them.  A load whose pair moved while it read is dropped for the same
reason (each move bumps the pair's version).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.ledger.domain import user_account

Pair = tuple[int, str]
"""(user id, asset code)."""

_AVAILABLE = text(
    "SELECT key, credits_posted - debits_posted - debits_pending AS available"
    " FROM ledger_accounts WHERE key IN :keys"
).bindparams(bindparam("keys", expanding=True))


class Funds:
    def __init__(self) -> None:
        self._available: dict[Pair, int] = {}
        self._in_flight: Counter[Pair] = Counter()
        self._version: Counter[Pair] = Counter()

    def known(self, pair: Pair) -> bool:
        return pair in self._available

    def available(self, pair: Pair) -> int:
        return self._available.get(pair, 0)

    def debit(self, pair: Pair, amount: int) -> None:
        left = self._available[pair] - amount
        if left < 0:
            raise AssertionError(f"{pair} would go below zero: the risk check was skipped")
        self._available[pair] = left
        self._version[pair] += 1

    def hold(self, pairs: Iterable[Pair]) -> None:
        """These pairs have moves about to be written: do not reload them until ``release``."""
        self._in_flight.update(pairs)

    def release(self, pairs: Iterable[Pair]) -> None:
        self._in_flight.subtract(pairs)
        self._in_flight = +self._in_flight

    def settle(self, credits: Mapping[Pair, int]) -> None:
        """A batch committed: its credits count now.  A pair not loaded yet is left alone
        (the ledger shows the credit when it is loaded)."""
        for pair, amount in credits.items():
            if pair in self._available:
                self._available[pair] += amount
            self._version[pair] += 1

    def drop(self, pairs: Iterable[Pair]) -> None:
        """A batch failed: these balances are read from the ledger again when next needed."""
        for pair in pairs:
            self._available.pop(pair, None)
            self._version[pair] += 1

    def reloadable(self, pair: Pair) -> bool:
        return not self._in_flight[pair]

    def forget(self) -> None:
        """Before this process starts running the books: others may have run them since.
        Versions are kept, so a load that began before still sees that its pair moved."""
        for pair in self._available:
            self._version[pair] += 1
        self._available.clear()

    async def load(self, session: AsyncSession, pairs: Iterable[Pair]) -> None:
        """Read these pairs' available balances from the ledger (0 for an unused account)."""
        wanted = [pair for pair in set(pairs) if self.reloadable(pair)]
        if not wanted:
            return
        versions = {pair: self._version[pair] for pair in wanted}
        keys = {user_account(user, asset): (user, asset) for user, asset in wanted}
        connection = await session.connection()
        rows = (await connection.execute(_AVAILABLE, {"keys": list(keys)})).all()
        found = {keys[row.key]: int(row.available) for row in rows}
        for pair in wanted:
            if self._version[pair] == versions[pair] and self.reloadable(pair):
                self._available[pair] = found.get(pair, 0)
