"""libraries, materials and speed: the commissioners' library (districts, capacity, the reason of a
suspension), the materials an enterprise sent with their bytes (case_material), and the indexes
the inbox and matching need on 100,000 cases

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07 19:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_INDEXES = (
    ('ix_service_case_status_created', ['status', 'created_at']),
    ('ix_service_case_owner_status', ['owner_id', 'status']),
    ('ix_service_case_assignee_status', ['assignee_id', 'status']),
)
UNSTAMPED = 'accepted_at IS NOT NULL AND first_response_seconds IS NULL'


def upgrade() -> None:
    with op.batch_alter_table('commissioner') as batch:
        batch.add_column(sa.Column('districts', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('max_open_cases', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('status_changed_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('status_changed_by', sa.String(length=80), nullable=True))
    op.create_table('case_material',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('ref', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('stored_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['service_case.id'], name=op.f('fk_case_material_case_id_service_case'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_material'))
    )
    op.create_index('ix_case_material_case', 'case_material', ['case_id', 'id'], unique=False)
    for name, columns in CASE_INDEXES:
        op.create_index(name, 'service_case', columns, unique=False)
    op.create_index('ix_service_case_response_unstamped', 'service_case', ['id'], unique=False,
                    postgresql_where=sa.text(UNSTAMPED), sqlite_where=sa.text(UNSTAMPED))


def downgrade() -> None:
    op.drop_index('ix_service_case_response_unstamped', table_name='service_case')
    for name, _ in CASE_INDEXES:
        op.drop_index(name, table_name='service_case')
    op.drop_index('ix_case_material_case', table_name='case_material')
    op.drop_table('case_material')
    with op.batch_alter_table('commissioner') as batch:
        for column in ('status_changed_by', 'status_changed_at', 'status_reason', 'max_open_cases', 'districts'):
            batch.drop_column(column)
