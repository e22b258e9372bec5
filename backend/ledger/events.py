"""After a commit, tell each user whose balance moved: an event on their private hub topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.hub.hub import Hub
from backend.ledger.assets import get_asset
from backend.ledger.domain import AccountSpec, Balance
from backend.ledger.service import BalanceListener

Held = Callable[[int, str], int]
"""Units of (user, asset) that open orders hold in escrow: locked, though the ledger has
already moved them out of the user's account."""


def balance_view(asset_code: str, balance: Balance | None, held: int = 0) -> dict[str, Any]:
    """A balance as the API and the hub show it: decimal strings (a JSON number loses
    precision past 2**53; a string never does).  Locked counts pending transfers and ``held``
    (what open orders hold)."""
    asset = get_asset(asset_code)
    available = balance.available if balance else 0
    locked = (balance.debits_pending if balance else 0) + held
    return {
        "asset": asset.code,
        "scale": asset.scale,
        "available": asset.format(available),
        "locked": asset.format(locked),
        "total": asset.format(available + locked),
    }


def balance_events(hub: Hub, held: Held | None = None) -> BalanceListener:
    async def publish(balances: list[Balance]) -> None:
        for balance in balances:
            spec = AccountSpec.parse(balance.key)
            if spec.owner_id is None:
                continue
            in_orders = held(spec.owner_id, spec.asset) if held else 0
            data = {"type": "balance", **balance_view(spec.asset, balance, in_orders)}
            await hub.publish(f"user:{spec.owner_id}", "event", data)

    return publish
