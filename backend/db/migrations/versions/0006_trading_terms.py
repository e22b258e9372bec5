"""Trading: the term that fences the books' writers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    terms = op.create_table(
        "trading_terms",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(terms, [{"id": 1, "term": 0}])


def downgrade() -> None:
    op.drop_table("trading_terms")
