"""The assets the ledger holds, and the conversion between integer units and decimal strings.

Amounts are whole numbers of an asset's smallest ledger unit.  For ETH and BNB that unit is the
gwei (9 places), not the wei (18): 18 places would overflow a 64-bit column at 9.2 ETH, and a
trading venue has no use for sub-gwei amounts.  Deposits and withdrawals (the chains issue) round
to the gwei; the dust stays on chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# PostgreSQL BIGINT: the largest amount, and the largest any balance counter may reach.
MAX_UNITS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    scale: int
    """Decimal places of one unit: an amount of 1 unit is 10**-scale of the asset."""
    name: str

    def to_units(self, amount: Decimal | str) -> int:
        """``"1.5"`` → 1_500_000_000 for TON; extra decimals are refused, not rounded."""
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError) as exc:
            raise ValueError(f"{self.code}: not a number: {amount!r}") from exc
        if not value.is_finite():
            raise ValueError(f"{self.code}: amount must be finite")
        units = value.scaleb(self.scale)
        if units != units.to_integral_value():
            raise ValueError(f"{self.code}: at most {self.scale} decimal places")
        result = int(units)
        if abs(result) > MAX_UNITS:
            raise ValueError(f"{self.code}: amount too large")
        return result

    def format(self, units: int) -> str:
        """1_500_000_000 → ``"1.5"`` for TON: exact, no exponent, no trailing zeros."""
        text = f"{Decimal(units).scaleb(-self.scale):f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text


ASSETS: dict[str, Asset] = {
    asset.code: asset
    for asset in (
        Asset("USDT", 6, "Tether USD"),
        Asset("TON", 9, "Toncoin"),
        Asset("ETH", 9, "Ether"),
        Asset("BNB", 9, "BNB"),
        # Points are whole: awards are tens or hundreds, shares of them round down.
        Asset("PTS", 0, "SimplRefQ points"),
    )
}
POINTS = ASSETS["PTS"]


def get_asset(code: str) -> Asset:
    try:
        return ASSETS[code]
    except KeyError:
        raise ValueError(f"unknown asset {code!r}") from None
