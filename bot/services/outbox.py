"""Writing notifications into the outbox, in the caller's transaction.

Nothing here sends anything: rows written with the state change they announce are delivered
later by :mod:`bot.notify.dispatcher`, so a notifier that is down delays a message but can
never lose it, and a rolled-back change never notifies anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Reply
from bot.services.message_log import notice_kind
from bot.storage.dialect import insert_ignore
from bot.storage.models import ChannelIdentity, MessageLog, Outbox
from intents.normalize import to_script


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    recipient: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    identity_id: int | None = None,
    dedup_key: str | None = None,
) -> int | None:
    """Add a notification; with ``dedup_key`` a second enqueue of the same key is a no-op
    (returns None), which keeps reminders and escalations from repeating."""
    return await insert_ignore(
        session,
        Outbox.__table__,
        {
            "channel": channel,
            "recipient": recipient,
            "identity_id": identity_id,
            "kind": kind,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "dedup_key": dedup_key,
        },
        ("dedup_key",) if dedup_key else ("id",),
    )


async def message_enterprise(
    session: AsyncSession,
    identity: ChannelIdentity,
    text: str,
    *,
    kind: str,
    now: datetime,
    author: str,
    case_id: int | None = None,
    dedup_key: str | None = None,
    choices: Sequence[str] = (),
) -> None:
    """Send a message to an enterprise in its own channel: logged in its transcript now,
    pushed by the dispatcher (or handed over at its next message if the channel cannot push).
    ``choices`` are short answers to tap (a WeChat menu message, web chat buttons)."""
    session.add(
        MessageLog(identity_id=identity.id, direction="out", text=text, author=author, case_id=case_id, created_at=now,
                   kind=notice_kind(kind), choices=list(choices) or None)
    )
    payload: dict[str, Any] = {"text": text, "script": identity.script, "author": author}
    if choices:
        payload["choices"] = list(choices)
    await enqueue(
        session,
        channel=identity.channel,
        recipient=identity.external_id,
        identity_id=identity.id,
        kind=kind,
        payload=payload,
        now=now,
        dedup_key=dedup_key,
    )


# Held rows, and rows whose push keeps failing (no access token, the platform down): the
# dispatcher retries those with backoff, possibly for hours, while the user is right here. Rows a
# worker is delivering right now are ``sending`` (their claim is committed before the push): left
# to it. On PostgreSQL rows a worker is claiming are skipped too. A message's first statement
# (``identities.arrive``) asks whether any such row exists, so only then is ``_HELD`` run.
TAKEABLE = or_(Outbox.status == "held",
               and_(Outbox.status == "pending", Outbox.attempts > 0, Outbox.last_error.is_not(None)))
_HELD = (
    select(Outbox)
    .where(Outbox.identity_id == bindparam("identity_id"), TAKEABLE)
    .order_by(Outbox.id)
    .with_for_update(skip_locked=True)
)
# The hand-over itself re-checks the status: on SQLite nothing is locked between the select and
# this update, and a dispatcher may have claimed a failing row in between (it then pushes it).
_TAKE = (
    update(Outbox)
    .where(Outbox.id.in_(bindparam("ids", expanding=True)), TAKEABLE)
    .values(status="sent", sent_at=bindparam("now"))
    .returning(Outbox.id)
    .execution_options(synchronize_session="fetch")  # the loaded rows read "sent" too
)


async def take_held(session: AsyncSession, identity_id: int, now: datetime) -> tuple[Reply, ...]:
    """Messages that could not be pushed to this user: handed over now, before the reply to
    the user's new message, and marked sent. Pending rows the dispatcher has not failed on, and
    rows it is sending at this moment, are left to it; failing ones are taken here."""
    rows = (await session.execute(_HELD, {"identity_id": identity_id})).scalars().all()
    if not rows:
        return ()
    taken = set((await session.execute(_TAKE, {"ids": [row.id for row in rows], "now": now})).scalars())
    replies = []
    for row in rows:
        if row.id not in taken:
            continue
        text = str(row.payload.get("text", ""))
        if text:
            # Rendered in the user's script here, once: a channel that already rendered it
            # (a late WeChat answer) marks the payload, and converting twice corrupts text.
            rendered, script = row.payload.get("rendered"), row.payload.get("script", "hans")
            choices = tuple(str(c) for c in row.payload.get("choices") or ())
            replies.append(Reply(text if rendered else to_script(text, script),
                                 choices if rendered else tuple(to_script(c, script) for c in choices)))
    return tuple(replies)
