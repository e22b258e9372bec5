"""Sessions that tokens name (so they can be revoked); user ids never reused on SQLite.

SQLite hands a deleted row's id to the next insert unless the key is AUTOINCREMENT, so an
old token for a deleted user would have become the next sign-up.  SQLite cannot add
AUTOINCREMENT to a table in place: the users table is rebuilt (Alembic's batch mode copies
it row for row, ids kept, and sqlite_sequence starts from the highest).  PostgreSQL's serial
ids are never reused, so there only the sessions table is added.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _users(autoincrement: bool) -> sa.Table:
    """The users table as 0001 and 0003 left it: the batch copy is built from this, not from
    reflection, so no CHECK, default or unnamed UNIQUE constraint is lost on the way."""
    return sa.Table(
        "users",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("username", sa.String(64)),
        sa.Column("first_name", sa.String(128), nullable=False, server_default=""),
        sa.Column("last_name", sa.String(128)),
        sa.Column("language_code", sa.String(16)),
        sa.Column("is_premium", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("photo_url", sa.String(512)),
        sa.Column("role", sa.String(16), nullable=False, server_default="user"),
        sa.Column("referral_code", sa.String(16), nullable=False, unique=True),
        sa.Column("referred_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("is_demo", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bot_blocked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('user', 'moderator', 'admin')", name="ck_users_role"),
        sa.CheckConstraint(
            "referred_by_id IS NULL OR referred_by_id <> id", name="ck_users_no_self_ref"
        ),
        sa.Index("ix_users_referred_by_id", "referred_by_id"),
        sqlite_autoincrement=autoincrement,
    )


def _rebuild_users(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # With foreign keys on, dropping the old table would run its ON DELETE actions (CASCADE
    # and SET NULL in other tables); env.py turns them off for SQLite migrations.
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("rebuilding users needs PRAGMA foreign_keys=OFF (see env.py)")
    with op.batch_alter_table(
        "users",
        recreate="always",
        copy_from=_users(autoincrement),
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass


def upgrade() -> None:
    _rebuild_users(autoincrement=True)
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_auth_sessions_user_id", table_name="auth_sessions")
    op.drop_table("auth_sessions")
    _rebuild_users(autoincrement=False)
