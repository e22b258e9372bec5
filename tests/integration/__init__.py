"""Services against the real databases (SQLite and PostgreSQL) and Redis, no HTTP."""
