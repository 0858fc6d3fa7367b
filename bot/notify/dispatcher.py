"""The outbox dispatcher: delivers due notifications with retry and exponential backoff.

Each row is claimed inside its own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several workers share the queue without delivering a row twice); its status changes commit
together with the claim. A notifier exception schedules the next attempt; after the last one
the row is marked ``dead`` and logged, never deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.notify.base import Delivery, Notification, Notifier
from bot.privacy import redact
from bot.storage.db import transaction
from bot.storage.models import Outbox
from bot.storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    sent: int = 0
    held: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.held + self.retried + self.dead


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay: float = 5.0  # seconds before the 2nd attempt; doubles each time
    max_delay: float = 900.0
    max_attempts: int = 12  # about 2 hours of retries with the defaults

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.base_delay * 2 ** max(attempts - 1, 0), self.max_delay))


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        notifiers: Mapping[str, Notifier],
        *,
        policy: RetryPolicy | None = None,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.notifiers = dict(notifiers)
        self.policy = policy or RetryPolicy()
        self.batch = batch
        self.clock = clock
        self.wakeup = asyncio.Event()

    def register(self, notifier: Notifier) -> None:
        self.notifiers[notifier.channel] = notifier

    async def _due_ids(self) -> list[int]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Outbox.id)
                # Only channels this process can deliver: a terminal chat process must not take
                # (and fail) web chat rows that the server process would deliver.
                .where(Outbox.status == "pending", Outbox.next_attempt_at <= self.clock(),
                       Outbox.channel.in_(list(self.notifiers)))
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(self.batch)
            )
            return list(rows.scalars())

    async def run_once(self) -> DispatchStats:
        """Deliver every notification due now; returns what happened to them."""
        stats = DispatchStats()
        for row_id in await self._due_ids():
            await self._deliver_one(row_id, stats)
        return stats

    async def _deliver_one(self, row_id: int, stats: DispatchStats) -> None:
        async with transaction(self.sessions) as session:
            stmt = select(Outbox).where(Outbox.id == row_id, Outbox.status == "pending")
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:  # another worker has it, or it was handed over at the user's next contact
                return
            now = self.clock()
            notifier = self.notifiers.get(row.channel)
            row.attempts += 1
            try:
                if notifier is None:
                    raise LookupError(f"no notifier configured for channel {row.channel!r}")
                outcome = await notifier.deliver(
                    Notification(row.id, row.channel, row.recipient, row.kind, dict(row.payload), row.identity_id,
                                 row.attempts)
                )
            except Exception as exc:
                row.last_error = redact(f"{type(exc).__name__}: {exc}")[:1000]
                if row.attempts >= self.policy.max_attempts:
                    if row.identity_id is not None:
                        # An enterprise message is never dropped: it waits for the user's next contact.
                        row.status = "held"
                        stats.held += 1
                    else:
                        row.status = "dead"
                        stats.dead += 1
                    log.error("outbox %d (%s to %s) gave up after %d attempts: %s", row.id, row.kind, row.channel,
                              row.attempts, row.last_error)
                else:
                    row.next_attempt_at = now + self.policy.delay(row.attempts)
                    stats.retried += 1
                    log.warning("outbox %d (%s to %s) attempt %d failed, retry at %s: %s", row.id, row.kind,
                                row.channel, row.attempts, row.next_attempt_at.isoformat(), row.last_error)
                return
            if outcome is Delivery.HELD:
                row.status = "held"
                stats.held += 1
            else:
                row.status, row.sent_at, row.last_error = "sent", now, None
                stats.sent += 1

    async def run_forever(self, interval: float = 1.0) -> None:
        """Poll for due rows; ``wakeup.set()`` makes a fresh row go out without waiting."""
        while True:
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not kill the loop
                log.exception("outbox dispatch round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=interval)
            self.wakeup.clear()
