"""Channel identities: which enterprise is behind a WeChat openid, web session or chat id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

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
    # One direct UPDATE instead of a dirty attribute: the ORM's flush costs several times the
    # statement, and this runs on every message.
    await session.execute(_TOUCH, {"identity_id": identity.id, "now": now})
    set_committed_value(identity, "last_inbound_at", now)
    return identity, created


# Prebuilt: every message runs these, and building a statement costs more than running it.
_FIND = select(ChannelIdentity).where(
    ChannelIdentity.channel == bindparam("channel"), ChannelIdentity.external_id == bindparam("external_id")
)
_TOUCH = (
    update(ChannelIdentity.__table__)
    .where(ChannelIdentity.__table__.c.id == bindparam("identity_id"))
    .values(last_inbound_at=bindparam("now"))
)


async def find(session: AsyncSession, channel: str, external_id: str) -> ChannelIdentity | None:
    return (await session.execute(_FIND, {"channel": channel, "external_id": external_id})).scalar_one_or_none()
