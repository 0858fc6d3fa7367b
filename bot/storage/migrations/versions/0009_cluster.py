"""cluster: leases for periodic jobs across workers; the outbox index for per-recipient order

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-07 16:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cluster_lease',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('expires_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cluster_lease'))
    )
    op.create_index('ix_outbox_recipient', 'outbox', ['channel', 'recipient', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_recipient', table_name='outbox')
    op.drop_table('cluster_lease')
