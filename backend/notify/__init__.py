"""Notifications: a transactional outbox, delivered through the bot within Telegram's limits."""
