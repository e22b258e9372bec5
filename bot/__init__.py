"""The Telegram bot: launcher of the mini-app (and, later, its notifier)."""
