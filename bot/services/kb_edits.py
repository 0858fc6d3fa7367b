"""Knowledge entries edited in the staff console: stored in the database, served by every worker.

The content files stay the base; an edit is an overlay row per entry id (``kb_edit``: published
or retired, with the entry's full content) and every edit increments the one-row ``kb_version``
in its transaction. The database is the source of truth: a worker serves the files plus the rows
at some version, and :class:`KnowledgeSync` brings it to the latest one

* at start, before the worker answers anyone;
* at once when a worker publishes (the ``kb`` event on :mod:`bot.events`: through Redis to every
  worker, or within the process without Redis) and when the Redis subscription comes back;
* and by polling the version every ``QIBOT_KB_POLL_SECONDS`` (30 s), for a lost event.

The index is built in a thread and swapped in whole (:meth:`KnowledgeService.apply`), so the
event loop is not held for the few tenths of a second a build takes and no request ever sees a
half-built index. Versions only go forward: a late poll never puts an older index back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.events import Event, EventBus
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import KbEdit, KbGap, KbVersion
from knowledge.entries import Entry, parse_entry
from knowledge.overlay import CONSOLE_FILE, to_raw
from knowledge.problems import KnowledgeBaseError

log = logging.getLogger(__name__)

TOPIC = "kb"  # event: {"version": N}, published after an edit commits
PUBLISHED, RETIRED = "published", "retired"


class EditConflict(Exception):
    """The entry changed (in another browser) since this form was opened."""


async def current_version(session: AsyncSession) -> int:
    return int((await session.execute(select(KbVersion.version).where(KbVersion.id == 1))).scalar_one_or_none() or 0)


async def overlay(session: AsyncSession) -> tuple[int, dict[str, Entry | None]]:
    """The edits as an overlay and the version they are at. The version is read first: rows
    committed after it can only make the overlay newer than its version says, never older (the
    next check then reloads once more, harmlessly)."""
    version = await current_version(session)
    found: dict[str, Entry | None] = {}
    for row in (await session.execute(select(KbEdit))).scalars():
        if row.state == RETIRED:
            found[row.entry_id] = None
            continue
        entry, _ = parse_entry(row.content, CONSOLE_FILE)
        if entry is None:  # validated when published; a row edited by hand is left out, loudly
            log.error("knowledge edit %s cannot be parsed; left out", row.entry_id)
            continue
        found[row.entry_id] = entry
    return version, found


async def edit_of(session: AsyncSession, entry_id: str) -> KbEdit | None:
    return await session.get(KbEdit, entry_id)


async def all_edits(session: AsyncSession) -> list[KbEdit]:
    """Every edited entry, published or retired (a few hundred rows at most: curated content)."""
    return list((await session.execute(select(KbEdit).order_by(KbEdit.entry_id))).scalars())


async def _next_version(session: AsyncSession) -> int:
    """Increment the counter; its row lock (PostgreSQL) or the write lock (SQLite) makes
    concurrent publishers take turns until commit, so versions commit in order."""
    await session.execute(update(KbVersion).where(KbVersion.id == 1).values(version=KbVersion.version + 1))
    return await current_version(session)


async def save(session: AsyncSession, entry_id: str, state: str, content: dict[str, Any], *, by: str,
               now: datetime, based_on: int | None) -> int:
    """Store an entry's new state (``published`` with its content, or ``retired``); returns the
    new version. ``based_on``: the entry's edit version when the form was opened (0: the file's
    version or a new entry); another edit since then raises :class:`EditConflict`. None skips
    the check."""
    version = await _next_version(session)
    row = await session.get(KbEdit, entry_id, with_for_update=True)
    if based_on is not None and (row.version if row is not None else 0) != based_on:
        raise EditConflict(entry_id)
    if row is None:
        session.add(KbEdit(entry_id=entry_id, state=state, content=content, version=version, updated_at=now,
                           updated_by=by))
    else:
        row.state, row.content, row.version, row.updated_at, row.updated_by = state, content, version, now, by
    await session.flush()
    return version


async def revert(session: AsyncSession, entry_id: str, *, based_on: int | None) -> int:
    """Drop the console's edit of an entry: the content file's version is served again. Returns
    the new version; raises :class:`EditConflict` as :func:`save` does."""
    version = await _next_version(session)
    row = await session.get(KbEdit, entry_id, with_for_update=True)
    if row is None or (based_on is not None and row.version != based_on):
        raise EditConflict(entry_id)
    await session.delete(row)
    await session.flush()
    return version


async def publish(session: AsyncSession, entry: Entry, *, by: str, now: datetime, based_on: int | None) -> int:
    return await save(session, entry.id, PUBLISHED, to_raw(entry), by=by, now=now, based_on=based_on)


async def mark_gap_handled(session: AsyncSession, gap_id: int, entry_id: str, by: str, now: datetime) -> bool:
    gap = await session.get(KbGap, gap_id)
    if gap is None:
        return False
    gap.handled_at, gap.handled_by, gap.handled_entry = now, by, entry_id
    return True


class KnowledgeSync:
    """Keeps one worker's :class:`KnowledgeService` at the latest version of the edits."""

    def __init__(self, service: KnowledgeService, sessions: async_sessionmaker[AsyncSession],
                 events: EventBus | None, poll_seconds: float = 30.0) -> None:
        self.service = service
        self._sessions = sessions
        self._events = events
        self._poll = poll_seconds
        self._serial = asyncio.Lock()
        self._failed = 0  # a version whose index would not build: reported once, not per poll
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Catch up now (before serving), then follow the events and poll."""
        await self.catch_up()
        if self._events is not None:
            await self._events.subscribe(TOPIC, self._on_event)
            self._events.on_resync(self._resync)
        self._poller = asyncio.create_task(self._poll_forever(), name="kb-sync")

    async def close(self) -> None:
        if self._events is not None:
            await self._events.unsubscribe(TOPIC, self._on_event)
        if self._poller is not None:
            poller, self._poller = self._poller, None
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def catch_up(self) -> bool:
        """Apply the edits if the database has a newer version; whether the index changed."""
        async with self._serial:
            async with transaction(self._sessions) as session:
                if await current_version(session) <= self.service.version:
                    return False
                version, found = await overlay(session)
            if version == self._failed:
                return False
            try:
                return await asyncio.to_thread(self.service.apply, version, found)
            except KnowledgeBaseError as exc:
                self._failed = version
                log.error("knowledge edits version %d not applied, old index kept: %s", version, exc)
                return False

    async def announce(self, version: int) -> None:
        """Tell every worker (this one included) that the edits reached ``version``."""
        if self._events is not None:
            await self._events.publish(TOPIC, {"version": version})
        else:
            await self.catch_up()

    async def _on_event(self, event: Event) -> None:
        version = event.get("version")
        if isinstance(version, int) and version > self.service.version:
            await self.catch_up()

    async def _resync(self) -> None:
        await self.catch_up()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.catch_up()
            except Exception:  # the database away for a moment: the next poll tries again
                log.warning("knowledge edits: checking for a new version failed", exc_info=True)


__all__ = [
    "PUBLISHED",
    "RETIRED",
    "TOPIC",
    "EditConflict",
    "KnowledgeSync",
    "all_edits",
    "current_version",
    "edit_of",
    "mark_gap_handled",
    "overlay",
    "publish",
    "revert",
    "save",
]
