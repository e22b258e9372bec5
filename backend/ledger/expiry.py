"""The sweep that voids pending transfers past their expiry (referral rewards, reservations)."""

from __future__ import annotations

import asyncio

import structlog

from backend.db.engine import Database
from backend.ledger.service import Ledger, now_micros

log = structlog.get_logger(__name__)

# Pending transfers expire in days or hours; sweeping each minute keeps an expired reservation
# from holding funds noticeably past its time.
SWEEP_SECONDS = 60.0
# Later sweeps only look back this far (see expire_forever).
LOOKBACK_MICROS = 3600 * 1_000_000


async def expire_forever(ledger: Ledger, db: Database) -> None:
    """The first sweep looks at everything; later ones only at the last hour, so a sweep does
    not re-read every reservation that ever expired (a missed sweep is covered by the overlap,
    a long outage by the full sweep at the next start)."""
    since = 0
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        started = now_micros()
        try:
            while await ledger.expire(db, since=since):
                pass
        except Exception:
            # A database blip skips a sweep; the next one picks up what this one missed.
            log.exception("ledger_expiry_failed")
            continue
        since = started - LOOKBACK_MICROS
