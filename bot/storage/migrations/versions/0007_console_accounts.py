"""staff console: accounts, server-side sessions, one-time sign-in links, append-only audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_GUARDS = (
    "CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit "
    "BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END",
    "CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit "
    "BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END",
)
_POSTGRES_GUARDS = (
    "CREATE FUNCTION staff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'staff_audit is append-only'; END $$",
    "CREATE TRIGGER staff_audit_no_change BEFORE UPDATE OR DELETE ON staff_audit "
    "FOR EACH ROW EXECUTE FUNCTION staff_audit_append_only()",
    "CREATE TRIGGER staff_audit_no_truncate BEFORE TRUNCATE ON staff_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION staff_audit_append_only()",
)


def upgrade() -> None:
    op.create_table('staff_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('commissioner_id', sa.Integer(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('password_changed_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['commissioner_id'], ['commissioner.id'],
                            name=op.f('fk_staff_account_commissioner_id_commissioner'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_account')),
    sa.UniqueConstraint('login', name=op.f('uq_staff_account_login'))
    )
    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['staff_account.id'],
                            name=op.f('fk_staff_session_account_id_staff_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_session_token_hash'))
    )
    op.create_index('ix_staff_session_account', 'staff_session', ['account_id'], unique=False)
    op.create_table('staff_login_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['staff_account.id'],
                            name=op.f('fk_staff_login_link_account_id_staff_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_link')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_login_link_token_hash'))
    )
    op.create_table('staff_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('login', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('case_number', sa.String(length=20), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_audit'))
    )
    op.create_index('ix_staff_audit_created', 'staff_audit', ['created_at'], unique=False)
    op.create_index('ix_staff_audit_case', 'staff_audit', ['case_id'], unique=False)
    guards = _POSTGRES_GUARDS if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS staff_audit_no_truncate ON staff_audit")
        op.execute("DROP TRIGGER IF EXISTS staff_audit_no_change ON staff_audit")
        op.execute("DROP FUNCTION IF EXISTS staff_audit_append_only()")
    op.drop_index('ix_staff_audit_case', table_name='staff_audit')
    op.drop_index('ix_staff_audit_created', table_name='staff_audit')
    op.drop_table('staff_audit')
    op.drop_table('staff_login_link')
    op.drop_index('ix_staff_session_account', table_name='staff_session')
    op.drop_table('staff_session')
    op.drop_table('staff_account')
