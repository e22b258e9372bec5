"""Database engine, unit of work and migrations (SQLite embedded, PostgreSQL in production)."""
