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
    records the contact time (the WeChat 48-hour customer-service window counts from it).

    Looks up first: almost every message comes from a known user, so the common case is one
    SELECT; the race of two first messages is settled by the unique key."""
    identity = await find(session, channel, external_id)
    created = False
    if identity is None:
        created = await insert_ignore(
            session,
            ChannelIdentity.__table__,
            {"channel": channel, "external_id": external_id, "created_at": now, "script": "hans",
             "language": "zh", "subscribed": True},
            ("channel", "external_id"),
        ) is not None
        identity = await find(session, channel, external_id)
        assert identity is not None
    identity.last_inbound_at = now
    return identity, created


async def find(session: AsyncSession, channel: str, external_id: str) -> ChannelIdentity | None:
    return (
        await session.execute(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        )
    ).scalar_one_or_none()
