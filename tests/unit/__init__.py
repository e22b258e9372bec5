"""Pure code: no database, no Redis, no server."""
