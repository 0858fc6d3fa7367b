"""followups and stats: the 好差评 follow-up of bad ratings (rating_followup); the working-calendar
deadlines and first response stamped on each case; indexes for the manager's dashboard; the
reason, time and author of an institution's or expert's status (the exit mechanism)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 16:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('institution', 'expert'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
            batch.add_column(sa.Column('status_changed_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column('status_changed_by', sa.String(length=80), nullable=True))
    with op.batch_alter_table('service_case') as batch:
        batch.add_column(sa.Column('accept_due_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('resolve_due_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('first_response_seconds', sa.Integer(), nullable=True))
    op.create_index('ix_service_case_created_at', 'service_case', ['created_at'], unique=False)
    op.create_index('ix_service_case_accepted_at', 'service_case', ['accepted_at'], unique=False)
    op.create_index('ix_service_case_resolved_at', 'service_case', ['resolved_at'], unique=False)
    op.create_index('ix_service_case_status_accept_due', 'service_case', ['status', 'accept_due_at'], unique=False)
    op.create_index('ix_service_case_status_resolve_due', 'service_case', ['status', 'resolve_due_at'], unique=False)
    op.create_index('ix_rating_created_at', 'rating', ['created_at'], unique=False)
    op.create_table('rating_followup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('due_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('called_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('called_by', sa.String(length=80), nullable=True),
    sa.Column('call_note', sa.Text(), nullable=True),
    sa.Column('verified_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verified_by', sa.String(length=80), nullable=True),
    sa.Column('verify_note', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=12), nullable=True),
    sa.Column('outcome_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome_by', sa.String(length=80), nullable=True),
    sa.Column('outcome_note', sa.Text(), nullable=True),
    sa.Column('rectify_due_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replied_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replied_by', sa.String(length=80), nullable=True),
    sa.Column('reply_text', sa.Text(), nullable=True),
    sa.Column('enterprise_score', sa.Integer(), nullable=True),
    sa.Column('enterprise_rated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['service_case.id'], name=op.f('fk_rating_followup_case_id_service_case'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rating_id'], ['rating.id'], name=op.f('fk_rating_followup_rating_id_rating'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rating_followup')),
    sa.UniqueConstraint('rating_id', name=op.f('uq_rating_followup_rating_id'))
    )
    op.create_index('ix_rating_followup_case_id', 'rating_followup', ['case_id'], unique=False)
    op.create_index('ix_rating_followup_status_due', 'rating_followup', ['status', 'due_at'], unique=False)
    op.create_index('ix_rating_followup_created_at', 'rating_followup', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rating_followup_created_at', table_name='rating_followup')
    op.drop_index('ix_rating_followup_status_due', table_name='rating_followup')
    op.drop_index('ix_rating_followup_case_id', table_name='rating_followup')
    op.drop_table('rating_followup')
    op.drop_index('ix_rating_created_at', table_name='rating')
    op.drop_index('ix_service_case_status_resolve_due', table_name='service_case')
    op.drop_index('ix_service_case_status_accept_due', table_name='service_case')
    op.drop_index('ix_service_case_resolved_at', table_name='service_case')
    op.drop_index('ix_service_case_accepted_at', table_name='service_case')
    op.drop_index('ix_service_case_created_at', table_name='service_case')
    with op.batch_alter_table('service_case') as batch:
        batch.drop_column('first_response_seconds')
        batch.drop_column('resolve_due_at')
        batch.drop_column('accept_due_at')
    for table in ('expert', 'institution'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('status_changed_by')
            batch.drop_column('status_changed_at')
            batch.drop_column('status_reason')
