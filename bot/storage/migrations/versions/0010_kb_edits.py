"""kb edits: knowledge entries edited in the console (kb_edit) with their version counter
(kb_version), and the gap log's "turned into an entry" marks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('kb_edit',
    sa.Column('entry_id', sa.String(length=120), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_kb_edit'))
    )
    version = op.create_table('kb_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_version'))
    )
    op.bulk_insert(version, [{'id': 1, 'version': 0}])
    with op.batch_alter_table('kb_gap') as batch:
        batch.add_column(sa.Column('handled_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('handled_by', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('handled_entry', sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('kb_gap') as batch:
        batch.drop_column('handled_entry')
        batch.drop_column('handled_by')
        batch.drop_column('handled_at')
    op.drop_table('kb_version')
    op.drop_table('kb_edit')
