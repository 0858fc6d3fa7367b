"""Channel identities: which enterprise is behind a WeChat openid, web session or chat id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.dialect import insert_ignore
from bot.storage.models import ChannelIdentity


async def touch(
    session: AsyncSession, channel: str, external_id: str, now: datetime
) -> tuple[ChannelIdentity, bool]:
    """The identity for this channel user, created on first contact (then the flag is True);
    records the contact time (the WeChat 48-hour customer-service window counts from it)."""
    created = await insert_ignore(
        session,
        ChannelIdentity.__table__,
        {"channel": channel, "external_id": external_id, "created_at": now, "script": "hans", "language": "zh",
         "subscribed": True},
        ("channel", "external_id"),
    )
    identity = (
        await session.execute(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        )
    ).scalar_one()
    identity.last_inbound_at = now
    return identity, created is not None


async def find(session: AsyncSession, channel: str, external_id: str) -> ChannelIdentity | None:
    return (
        await session.execute(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        )
    ).scalar_one_or_none()
