"""request guards: callback nonces already seen (replay protection), server secrets (web sessions)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('seen_nonce',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('body_digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_seen_nonce'))
    )
    op.create_index('ix_seen_nonce_expires_at', 'seen_nonce', ['expires_at'], unique=False)
    op.create_table('server_secret',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_server_secret'))
    )


def downgrade() -> None:
    op.drop_table('server_secret')
    op.drop_index('ix_seen_nonce_expires_at', table_name='seen_nonce')
    op.drop_table('seen_nonce')
