"""Percentiles, as every benchmark prints them."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` from 0 to 100) of values sorted ascending, in their unit.

    The caller sorts, once: a benchmark asks for several percentiles of a million timings.
    """
    if not ordered:
        raise ValueError("no values")
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]
