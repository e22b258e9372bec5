"""``simplrefq chains reconcile``: the ledger's custody of each chain against what its vault
holds on chain.

Deposits credit users from the chain's custody account ``sys:custody_<chain>:<asset>``, so that
account's balance stands at minus what users were credited: the ledger's custody is its
negation.  The vault's token balance (``balanceOf(vault)``) is read from the node and scaled to
the ledger's units with the chain's decimals, rounding down as deposits do.  The native coin
(ETH, BNB) is held the same way, as ``sys:custody_<chain>:<native asset>`` against the vault's
``eth_getBalance``; a chain whose vault never held any and credited none shows no native row.

The rule: a chain holding *less* than the ledger says users deposited is a shortfall, and a
failure (money the ledger owes that the vault no longer has).  Holding *more* is reported but
is not a failure: deposits awaiting their confirmations, deposits not credited (an unknown user,
below the minimum), tokens sent to the vault without a deposit, and dust below the ledger's
precision all leave the chain ahead of the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend.chains.deposits import custody_source
from backend.chains.evm import NATIVE_DECIMALS, to_ledger_units
from backend.chains.rpc import EvmRpc
from backend.config import ChainsSettings
from backend.db.engine import Database
from backend.ledger.assets import ASSETS
from backend.ledger.queries import system_balance


@dataclass(frozen=True, slots=True)
class CustodyRow:
    """One asset on one chain, in the asset's ledger units."""

    chain: str
    asset: str
    ledger: int
    """What the ledger says users deposited there: minus the custody account's balance."""
    on_chain: int
    """The vault's token balance, scaled down to the ledger's units."""

    @property
    def difference(self) -> int:
        """On chain minus the ledger: below zero is a shortfall."""
        return self.on_chain - self.ledger

    @property
    def shortfall(self) -> bool:
        return self.difference < 0


async def reconcile(
    db: Database,
    settings: ChainsSettings,
    *,
    rpc_for: Callable[[str], EvmRpc] = EvmRpc,
) -> list[CustodyRow]:
    """A row per configured chain (an RPC URL and a vault) and asset it takes.  Raises
    ``RpcError`` when a node does not answer: a reconciliation with a chain missing is none."""
    usdt = ASSETS["USDT"]
    rows = []
    for name, chain in settings.evm.items():
        if not (chain.rpc_url and chain.vault):
            continue
        native = ASSETS[chain.native_asset]
        # The ledger first: a deposit credited between the two reads was on chain already, so
        # it shows as a surplus, never as a false shortfall.
        async with db.reads() as session:
            usdt_custody = await system_balance(session, custody_source(name), usdt.code)
            native_custody = await system_balance(session, custody_source(name), native.code)
        rpc = rpc_for(chain.rpc_url)
        try:
            usdt_raw = await rpc.token_balance(chain.usdt, chain.vault) if chain.usdt else None
            native_raw = await rpc.native_balance(chain.vault)
        finally:
            await rpc.close()
        if native_custody or native_raw:  # a vault never given native coin: nothing to say
            on_chain = to_ledger_units(native_raw, NATIVE_DECIMALS, native.scale)
            rows.append(CustodyRow(name, native.code, -native_custody, on_chain))
        if usdt_raw is not None:
            on_chain = to_ledger_units(usdt_raw, chain.usdt_decimals, usdt.scale)
            rows.append(CustodyRow(name, usdt.code, -usdt_custody, on_chain))
    return rows
