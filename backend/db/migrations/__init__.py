"""Alembic migrations; ``tables`` names every capability's tables for them."""
