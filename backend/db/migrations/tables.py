"""Every table, imported once so that SQLModel.metadata is complete for Alembic (only for it)."""

from __future__ import annotations

from sqlmodel import SQLModel

from backend.alerts.models import PriceAlert
from backend.audit.models import AuditEntry
from backend.auth.models import AuthSession
from backend.chains.deposit_models import ChainCursor, ChainDeposit, DepositAddress
from backend.chains.models import LinkedWallet, WalletChallenge
from backend.chains.withdrawal_models import ChainTx, ChainWithdrawal
from backend.ledger.models import LedgerAccount, LedgerChain, LedgerTransfer
from backend.notify.models import Notification, NotificationSettings
from backend.points.models import PointsProfile, ReferralReward
from backend.signals.models import SignalCandle, SignalRecord
from backend.trading.models import BookSnapshot, JournalEntry, Order, TradeRecord, TradingTerm
from backend.users.models import User

metadata = SQLModel.metadata

__all__ = [
    "AuditEntry",
    "AuthSession",
    "BookSnapshot",
    "ChainCursor",
    "ChainDeposit",
    "ChainTx",
    "ChainWithdrawal",
    "DepositAddress",
    "JournalEntry",
    "LedgerAccount",
    "LedgerChain",
    "LedgerTransfer",
    "LinkedWallet",
    "Notification",
    "NotificationSettings",
    "Order",
    "PointsProfile",
    "PriceAlert",
    "ReferralReward",
    "SignalCandle",
    "SignalRecord",
    "TradeRecord",
    "TradingTerm",
    "User",
    "WalletChallenge",
    "metadata",
]
