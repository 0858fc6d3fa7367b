"""The WeChat channel's own rows: who answers a retried or late message, the per-user
customer-service quota, and the follow flag. Each function runs in the caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.wechat.callback import CHANNEL
from bot.storage.models import ChannelIdentity, WeChatCsQuota, WeChatReplyClaim

PER_USER_MESSAGE = 5  # customer-service messages WeChat accepts per user message


async def insert_or_skip(
    session: AsyncSession, table: Table, values: Mapping[str, Any], conflict: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING for tables keyed by something other than an ``id``
    (``bot.storage.dialect.insert_ignore`` returns the new id)."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = module.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    await session.execute(stmt)


async def claim(session: AsyncSession, key: str, how: str, now: datetime) -> str:
    """Record that the answer to ``key`` goes out ``how`` (push | passive), unless an earlier
    claim exists; return the claim in force. The primary key makes the first claim win even
    across workers, so a late push and a passive replay can never both happen."""
    await insert_or_skip(session, WeChatReplyClaim.__table__, {"key": key, "how": how, "created_at": now}, ("key",))
    existing = await session.execute(select(WeChatReplyClaim.how).where(WeChatReplyClaim.key == key))
    return str(existing.scalar_one())


def dedup_key(prefix: str, key: str) -> str:
    """An outbox dedup key for this callback, hashed when it would not fit the column."""
    full = f"{prefix}:{key}"
    return full if len(full) <= 128 else f"{prefix}:{hashlib.sha256(key.encode()).hexdigest()}"


async def set_subscribed(session: AsyncSession, openid: str, subscribed: bool) -> None:
    await session.execute(
        update(ChannelIdentity)
        .where(ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_id == openid)
        .values(subscribed=subscribed)
    )


async def reserve(session: AsyncSession, identity_id: int, window_start: datetime, count: int) -> bool:
    """Take ``count`` customer-service messages from the user's allowance for the message that
    opened ``window_start``; False when they would exceed it. Atomic (one conditional UPDATE),
    so two workers pushing to one user cannot both take the last one."""
    await insert_or_skip(
        session, WeChatCsQuota.__table__, {"identity_id": identity_id, "window_start": window_start, "sent": 0},
        ("identity_id",),
    )
    table = WeChatCsQuota.__table__
    await session.execute(  # a newer user message opens a fresh allowance
        update(table)
        .where(table.c.identity_id == identity_id, table.c.window_start != window_start)
        .values(window_start=window_start, sent=0)
    )
    taken = await session.execute(
        update(table)
        .where(
            table.c.identity_id == identity_id,
            table.c.window_start == window_start,
            table.c.sent + count <= PER_USER_MESSAGE,
        )
        .values(sent=table.c.sent + count)
    )
    return bool(cast("CursorResult[Any]", taken).rowcount)  # an UPDATE's result is a CursorResult


async def give_back(session: AsyncSession, identity_id: int, window_start: datetime, count: int) -> None:
    """Return reservations that were not used (the push failed before WeChat took it)."""
    table = WeChatCsQuota.__table__
    await session.execute(
        update(table)
        .where(table.c.identity_id == identity_id, table.c.window_start == window_start, table.c.sent >= count)
        .values(sent=table.c.sent - count)
    )


async def exhaust(session: AsyncSession, identity_id: int, window_start: datetime) -> None:
    """WeChat said 45015: nothing more can be pushed until the user writes again."""
    table = WeChatCsQuota.__table__
    await session.execute(
        update(table)
        .where(table.c.identity_id == identity_id, table.c.window_start == window_start)
        .values(sent=PER_USER_MESSAGE)
    )
