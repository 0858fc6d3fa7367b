"""privacy: consents and request audit; limits: refusal counters

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('privacy_consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=True),
    sa.Column('enterprise_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('notice_version', sa.String(length=20), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('withdrawn_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_privacy_consent_enterprise_id_enterprise'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['identity_id'], ['channel_identity.id'], name=op.f('fk_privacy_consent_identity_id_channel_identity'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_consent'))
    )
    op.create_index('ix_privacy_consent_identity', 'privacy_consent', ['identity_id'], unique=False)
    op.create_table('privacy_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_privacy_request_enterprise_id_enterprise'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_request'))
    )
    op.create_table('limit_refusal',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('limit', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', 'limit', 'channel', name=op.f('pk_limit_refusal'))
    )


def downgrade() -> None:
    op.drop_table('limit_refusal')
    op.drop_table('privacy_request')
    op.drop_index('ix_privacy_consent_identity', table_name='privacy_consent')
    op.drop_table('privacy_consent')
