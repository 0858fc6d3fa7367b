"""wechat: shared access token, customer-service quota, reply claims

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('wechat_access_token',
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('token', sa.Text(), nullable=False, server_default=''),
    sa.Column('expires_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('lease_owner', sa.String(length=40), nullable=True),
    sa.Column('lease_until', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_wechat_access_token'))
    )
    op.create_table('wechat_cs_quota',
    sa.Column('identity_id', sa.Integer(), nullable=False),
    sa.Column('window_start', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False, server_default='0'),
    sa.ForeignKeyConstraint(['identity_id'], ['channel_identity.id'], name=op.f('fk_wechat_cs_quota_identity_id_channel_identity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('identity_id', name=op.f('pk_wechat_cs_quota'))
    )
    op.create_table('wechat_reply_claim',
    sa.Column('key', sa.String(length=260), nullable=False),
    sa.Column('how', sa.String(length=8), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_wechat_reply_claim'))
    )


def downgrade() -> None:
    op.drop_table('wechat_reply_claim')
    op.drop_table('wechat_cs_quota')
    op.drop_table('wechat_access_token')
