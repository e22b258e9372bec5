"""A local EVM chain for the tests and the benchmarks: the production runner
(``backend/chains/anvil.py``), named here where the tests have always found it."""

from __future__ import annotations

from backend.chains.anvil import (
    Anvil,
    AnvilUnavailableError,
    find_anvil,
    start_anvil,
)

__all__ = ["Anvil", "AnvilUnavailableError", "find_anvil", "start_anvil"]
