"""A user's account at a glance: balances, points and referrals, read once for every transport.

The REST API and the bot answer the same questions ("what do I hold?", "where do I stand?",
"whom did I bring?"); each answer is composed here as plain data, and the transports only
format it, so the two cannot drift apart.
"""
