"""Reads of ledger accounts for the views (the tabs, the bot) and the reports (custody against
the chains).  No writes here."""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.ledger.assets import ASSETS
from backend.ledger.domain import SYSTEM_SHARDS, Balance, system_account, user_account
from backend.ledger.store.base import ACCOUNT_COLUMNS, balance_from

_BALANCES = f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE key IN :keys"  # noqa: S608
_SYSTEM_BALANCE = (
    "SELECT COALESCE(SUM(credits_posted - debits_posted), 0) "
    "FROM ledger_accounts WHERE key IN :keys"
)


async def balances(session: AsyncSession, user_id: int) -> dict[str, Balance | None]:
    """Every asset's balance for the user, None where the account was never used."""
    keys = {user_account(user_id, code): code for code in ASSETS}
    connection = await session.connection()
    statement = text(_BALANCES).bindparams(bindparam("keys", expanding=True))
    rows = (await connection.execute(statement, {"keys": list(keys)})).all()
    found = {keys[row.key]: balance_from(row) for row in rows}
    return {code: found.get(code) for code in ASSETS}


async def system_balance(session: AsyncSession, name: str, asset: str) -> int:
    """A system account's posted balance (credits - debits), its shards summed: custody, say,
    which deposits debit, stands at minus what users were credited from it."""
    key = system_account(name, asset)
    keys = [key, *(f"{key}:{shard}" for shard in range(SYSTEM_SHARDS))]
    connection = await session.connection()
    statement = text(_SYSTEM_BALANCE).bindparams(bindparam("keys", expanding=True))
    found = (await connection.execute(statement, {"keys": keys})).scalar_one()
    return int(found)
