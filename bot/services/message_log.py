"""The message log: every inbound and outbound message, de-duplicated by the channel's id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import InboundMessage, Reply
from bot.storage.dialect import insert_ignore
from bot.storage.models import MessageLog


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    direction: str
    text: str
    created_at: datetime
    author: str | None
    kind: str = "text"  # inbound: text | event | image ...; outbound: text or a NOTICE_KINDS value
    choices: tuple[str, ...] = ()


# What a message sent on the service's own initiative is, kept in ``message_log.kind`` so a
# channel can show a person's words, a complaint reply and a status notice apart (also after a
# reload): notification kind -> log kind. Anything else sent that way is a status notice.
NOTICE_KINDS = {
    "enterprise_reply": "person",  # a commissioner's own words
    "complaint_reply": "complaint",
    "enterprise_resolved": "rating",  # a status notice that asks for a rating
    "rating_reminder": "rating",
}


def notice_kind(kind: str) -> str:
    return NOTICE_KINDS.get(kind, "status")


async def record_inbound(
    session: AsyncSession,
    identity_id: int,
    message: InboundMessage,
    *,
    act: str | None = None,
    domain: str | None = None,
    confidence: float | None = None,
) -> int | None:
    """Store an inbound message (with what the NLU made of it); None when this channel message
    id was already stored (a retried delivery), so the caller answers with the first reply
    instead of a second one."""
    return await insert_ignore(
        session,
        MessageLog.__table__,
        {
            "identity_id": identity_id,
            "direction": "in",
            "channel_message_id": message.message_id,
            "kind": message.kind,
            "text": message.text,
            "created_at": message.timestamp,
            "author": "user",
            "act": act,
            "domain": domain,
            "confidence": confidence,
        },
        ("identity_id", "direction", "channel_message_id"),
    )


async def existing_inbound_id(session: AsyncSession, identity_id: int, message_id: str) -> int | None:
    return (
        await session.execute(
            select(MessageLog.id).where(
                MessageLog.identity_id == identity_id,
                MessageLog.direction == "in",
                MessageLog.channel_message_id == message_id,
            )
        )
    ).scalar_one_or_none()


async def record_outbound(
    session: AsyncSession,
    identity_id: int,
    replies: Sequence[Reply],
    reply_to_id: int | None,
    now: datetime,
    author: str = "bot",
) -> None:
    if not replies:
        return
    # A direct INSERT: nothing reads these rows back in the turn, and the ORM's unit of work
    # would cost several times the statement on every message.
    rows = [
        {"identity_id": identity_id, "direction": "out", "text": reply.text, "reply_to_id": reply_to_id,
         "created_at": now, "author": author, "kind": "text", "choices": list(reply.choices) or None}
        for reply in replies
    ]
    await session.execute(_INSERT_LOG, rows[0] if len(rows) == 1 else rows)  # one row: no executemany path


_INSERT_LOG = insert(MessageLog.__table__)


async def replies_to(session: AsyncSession, inbound_id: int) -> tuple[Reply, ...]:
    rows = await session.execute(
        select(MessageLog.text, MessageLog.choices).where(MessageLog.reply_to_id == inbound_id).order_by(MessageLog.id)
    )
    return tuple(Reply(text=text, choices=tuple(choices or ())) for text, choices in rows)


async def transcript(session: AsyncSession, identity_id: int, limit: int = 200) -> list[LoggedMessage]:
    """The most recent messages of one identity, oldest first."""
    rows = (
        await session.execute(
            select(MessageLog)
            .where(MessageLog.identity_id == identity_id)
            .order_by(MessageLog.id.desc())
            .limit(limit)
        )
    ).scalars()
    return [LoggedMessage(r.direction, r.text, r.created_at, r.author, r.kind or "text", tuple(r.choices or ()))
            for r in reversed(list(rows))]
