"""Reads of a user's ledger accounts for the views (the tabs, the bot).  No writes here."""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.ledger.assets import ASSETS
from backend.ledger.domain import Balance, user_account
from backend.ledger.store.base import ACCOUNT_COLUMNS, balance_from

_BALANCES = f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE key IN :keys"  # noqa: S608


async def balances(session: AsyncSession, user_id: int) -> dict[str, Balance | None]:
    """Every asset's balance for the user, None where the account was never used."""
    keys = {user_account(user_id, code): code for code in ASSETS}
    connection = await session.connection()
    statement = text(_BALANCES).bindparams(bindparam("keys", expanding=True))
    rows = (await connection.execute(statement, {"keys": list(keys)})).all()
    found = {keys[row.key]: balance_from(row) for row in rows}
    return {code: found.get(code) for code in ASSETS}
