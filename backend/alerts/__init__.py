"""Price alerts: "tell me when TON-USDT crosses 6.00", fired once through the outbox."""
