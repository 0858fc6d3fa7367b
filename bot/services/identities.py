"""Channel identities: which enterprise is behind a WeChat openid, web session or chat id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, exists, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.outbox import TAKEABLE
from bot.storage.dialect import insert_for
from bot.storage.models import ChannelIdentity, Outbox


@dataclass(frozen=True, slots=True)
class Arrival:
    """Who sent a message, as the turn's first statement found them."""

    identity: ChannelIdentity
    first_contact: bool
    #: Messages wait for this user (``outbox.take_held`` has something to hand over); seen by
    #: the same statement, so a turn without any (almost all) makes no query for them.
    held: bool


async def touch(
    session: AsyncSession, channel: str, external_id: str, now: datetime
) -> tuple[ChannelIdentity, bool]:
    """The identity for this channel user, created on first contact (then the flag is True);
    records the contact time (the WeChat 48-hour customer-service window counts from it)."""
    arrival = await arrive(session, channel, external_id, now)
    return arrival.identity, arrival.first_contact


async def arrive(session: AsyncSession, channel: str, external_id: str, now: datetime) -> Arrival:
    """:func:`touch`, and whether messages are held for the user.

    Almost every message comes from a known user, so the common case is one statement: the
    UPDATE that records the contact returns the row (and whether messages wait). A first
    contact inserts the row with its contact time (``ON CONFLICT DO NOTHING … RETURNING``); the
    race of two first messages is settled by the unique key, and the loser updates the winner's
    row."""
    keys = {"b_channel": channel, "b_external_id": external_id, "now": now}
    row = (await session.execute(_TOUCH, keys)).one_or_none()
    if row is not None:
        return Arrival(row[0], False, bool(row[1]))
    identity = (await session.execute(_create_statement(session.get_bind().dialect.name), keys)).scalar_one_or_none()
    if identity is not None:
        return Arrival(identity, True, False)  # nothing can be held for a user who did not exist
    row = (await session.execute(_TOUCH, keys)).one()  # created meanwhile by another turn
    return Arrival(row[0], False, bool(row[1]))


# Prebuilt: every message runs these, and building a statement costs more than running it.
_TABLE = ChannelIdentity.__table__
_FIND = select(ChannelIdentity).where(
    ChannelIdentity.channel == bindparam("channel"), ChannelIdentity.external_id == bindparam("external_id")
)
# The ORM loads the returned row as the identity (so later attribute changes flush as usual).
# The identity's id spelled with its table: SQLite writes RETURNING columns unqualified, and a
# bare "id" inside the subquery would be the outbox row's own id.
_HELD = exists().where(Outbox.__table__.c.identity_id == literal_column("channel_identity.id"), TAKEABLE).label("held")
_TOUCH = select(ChannelIdentity, _HELD).from_statement(
    update(_TABLE)
    .where(_TABLE.c.channel == bindparam("b_channel"), _TABLE.c.external_id == bindparam("b_external_id"))
    .values(last_inbound_at=bindparam("now"))
    .returning(*_TABLE.c, _HELD)
)


@lru_cache(maxsize=2)
def _create_statement(dialect: str) -> Any:
    insert = (
        insert_for(dialect, _TABLE)
        .values(channel=bindparam("b_channel"), external_id=bindparam("b_external_id"), created_at=bindparam("now"),
                last_inbound_at=bindparam("now"), script="hans", language="zh", subscribed=True)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(*_TABLE.c)
    )
    return select(ChannelIdentity).from_statement(insert)


async def find(session: AsyncSession, channel: str, external_id: str) -> ChannelIdentity | None:
    return (await session.execute(_FIND, {"channel": channel, "external_id": external_id})).scalar_one_or_none()
