"""The outbox dispatcher: delivers due notifications with retry and exponential backoff.

A delivery waits on another platform (a WeChat call may take its full 10 s timeout), so it runs
outside any database transaction, in three steps:

1. **claim** (a short transaction): the row becomes ``sending``, its attempt is counted, and
   ``next_attempt_at`` becomes its lease: the time after which the claim is void. On PostgreSQL
   the row is picked ``FOR UPDATE SKIP LOCKED``, so several workers share the queue without
   waiting for each other; the update is conditional, so only one of them gets the row;
2. **deliver**, with no transaction and no connection held, cut off after ``timeout``;
3. **record** the outcome (another short transaction): ``sent``, ``held``, a retry
   (``pending`` again, later), or ``dead`` after the last attempt (logged, never deleted). The
   update only applies while the row is still this worker's claim (``sending`` with the
   attempt count it claimed).

A worker that dies between 1 and 3 leaves the row ``sending``; once the lease has run out the
row is due again and another worker delivers it (notifiers are idempotent per notification id).

Each channel has its own bound on concurrent deliveries, and the rows of one recipient go out
one after the other in their order (a *lane*): a slow or down platform delays its own rows only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, Update, and_, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.notify.base import Delivery, Notification, Notifier
from bot.privacy import redact
from bot.storage.db import transaction
from bot.storage.models import Outbox
from bot.storage.outage import OUTAGE, is_unavailable
from bot.storage.types import utcnow

log = logging.getLogger(__name__)

PENDING, SENDING = "pending", "sending"
DEFAULT_CONCURRENCY = 4  # deliveries at once per channel
DEFAULT_TIMEOUT = 15.0  # seconds one delivery may take before it counts as a failed attempt
LEASE_MARGIN = 60.0  # seconds beyond the timeout before a claim is void: claim and record must commit


# Prebuilt, on the table (no ORM bookkeeping): two of these run for every delivery.
_OUTBOX = Outbox.__table__
_DUE_ROW = (_OUTBOX.c.id == bindparam("row_id"), _OUTBOX.c.status.in_((PENDING, SENDING)),
            _OUTBOX.c.next_attempt_at <= bindparam("now"))
_CLAIM_SET = update(_OUTBOX).values(status=SENDING, attempts=_OUTBOX.c.attempts + 1,
                                    next_attempt_at=bindparam("lease_until")).returning(
    _OUTBOX.c.id, _OUTBOX.c.channel, _OUTBOX.c.recipient, _OUTBOX.c.kind, _OUTBOX.c.payload, _OUTBOX.c.identity_id,
    _OUTBOX.c.attempts)
# The rows of one recipient go out in order across workers too (in one process a lane does it): a
# row is not claimed while an earlier row of its recipient is being sent, or due and waiting.
_EARLIER = _OUTBOX.alias("earlier")
_NOTHING_EARLIER = ~exists().where(
    _EARLIER.c.channel == _OUTBOX.c.channel, _EARLIER.c.recipient == _OUTBOX.c.recipient,
    _EARLIER.c.id < _OUTBOX.c.id,
    or_(_EARLIER.c.status == SENDING,
        and_(_EARLIER.c.status == PENDING, _EARLIER.c.next_attempt_at <= bindparam("now"))),
)
_CLAIM = _CLAIM_SET.where(*_DUE_ROW, _NOTHING_EARLIER)  # SQLite: one writer at a time, and the update re-checks the row
# PostgreSQL: skip a row another worker (or a hand-over at the user's next contact) has locked.
_CLAIM_SKIP_LOCKED = _CLAIM_SET.where(
    *_DUE_ROW, _NOTHING_EARLIER,
    _OUTBOX.c.id == select(_OUTBOX.c.id).where(*_DUE_ROW).with_for_update(skip_locked=True).scalar_subquery(),
)
_RECORD_WHERE = update(_OUTBOX).where(_OUTBOX.c.id == bindparam("row_id"), _OUTBOX.c.status == SENDING,
                                      _OUTBOX.c.attempts == bindparam("claimed_attempts"))
_RECORD: dict[tuple[str, ...], Update] = {}  # by the columns an outcome sets


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


class _Round:
    """The rows one poll handed to lanes: ``run_once`` waits until each of them is handled."""

    def __init__(self) -> None:
        self.stats = DispatchStats()
        self._open = 0
        self._done = asyncio.Event()
        self._done.set()

    def add(self) -> None:
        self._open += 1
        self._done.clear()

    def finish(self) -> None:
        self._open -= 1
        if self._open == 0:
            self._done.set()

    async def wait(self) -> None:
        await self._done.wait()


@dataclass
class _Lane:
    """The due rows of one recipient in one channel, delivered in order by one task."""

    queue: deque[tuple[int, _Round]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        notifiers: Mapping[str, Notifier],
        *,
        policy: RetryPolicy | None = None,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT,
        lease: float | None = None,
    ) -> None:
        """``batch``: due rows taken per channel and poll; ``concurrency``: deliveries at once per
        channel; ``timeout``: seconds one delivery may take; ``lease``: seconds a claim holds a row
        (by default the timeout plus a minute) before another worker may take it over."""
        if concurrency < 1 or timeout <= 0:
            raise ValueError("concurrency must be at least 1 and timeout positive")
        self.sessions = sessions
        self.notifiers = dict(notifiers)
        self.policy = policy or RetryPolicy()
        self.batch = batch
        self.clock = clock
        self.concurrency = concurrency
        self.timeout = timeout
        self.lease = timedelta(seconds=lease if lease is not None else timeout + LEASE_MARGIN)
        self.wakeup = asyncio.Event()
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._queued: set[int] = set()  # row ids waiting in a lane of this process, or being delivered
        self._full: set[str] = set()  # channels whose last poll hit ``batch``: more rows may be due
        self._claimed: dict[int, Notification] = {}  # rows this process claimed and has not recorded
        self._closing = False

    def register(self, notifier: Notifier) -> None:
        self.notifiers[notifier.channel] = notifier

    # --- polling -------------------------------------------------------------------------------

    async def _due(self) -> list[tuple[str, int, str]]:
        """(channel, id, recipient) of due rows, ``batch`` per channel: a channel with a long
        backlog must not crowd the others out of a poll."""
        now = self.clock()
        due: list[tuple[str, int, str]] = []
        self._full.clear()
        async with self.sessions() as session:
            # Only channels this process can deliver: a terminal chat process must not take
            # (and fail) web chat rows that the server process would deliver.
            for channel in list(self.notifiers):
                rows = (await session.execute(
                    select(Outbox.id, Outbox.recipient)
                    # A ``sending`` row whose lease has run out lost its worker: due again.
                    .where(Outbox.channel == channel, Outbox.status.in_((PENDING, SENDING)),
                           Outbox.next_attempt_at <= now)
                    .order_by(Outbox.next_attempt_at, Outbox.id)
                    .limit(self.batch)
                )).all()
                if len(rows) >= self.batch:
                    self._full.add(channel)
                due.extend((channel, row_id, recipient) for row_id, recipient in rows)
        return due

    async def _poll(self) -> _Round:
        """Hand every due row not yet in a lane to the lane of its recipient (started if idle)."""
        round_ = _Round()
        if self._closing:
            return round_
        for channel, row_id, recipient in await self._due():
            if row_id in self._queued:
                continue
            self._queued.add(row_id)
            round_.add()
            key = (channel, recipient)
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane()
                lane.task = asyncio.create_task(self._drain(key, lane), name=f"outbox-{channel}")
            lane.queue.append((row_id, round_))
        return round_

    async def _drain(self, key: tuple[str, str], lane: _Lane) -> None:
        gate = self._gates.setdefault(key[0], asyncio.Semaphore(self.concurrency))
        try:
            while lane.queue and not self._closing:
                row_id, round_ = lane.queue[0]
                try:
                    async with gate:
                        await self._deliver_one(row_id, round_.stats)
                except Exception as exc:  # a database hiccup: the row stays due (or leased) and comes back
                    if is_unavailable(exc):
                        OUTAGE.mark_down(exc)
                    else:
                        log.exception("outbox %d: dispatch failed", row_id)
                finally:
                    lane.queue.popleft()
                    self._queued.discard(row_id)
                    round_.finish()
        finally:
            # No await between the last look at the queue and leaving the map: a poll either
            # appended to this lane before, or starts a new one after.
            if self._lanes.get(key) is lane:
                del self._lanes[key]
            for row_id, round_ in lane.queue:  # cancelled: nobody waits for rows it did not reach
                self._queued.discard(row_id)
                round_.finish()
            lane.queue.clear()
            if key[0] in self._full:
                self.wakeup.set()  # capacity freed while rows may still be waiting unpolled

    async def _stop(self, rounds: set[_Round] | None = None) -> None:
        """Cancel the lanes (those holding rows of ``rounds``, or all) and wait for them. A row
        being delivered stays ``sending`` and goes out again when its lease has run out."""
        tasks = [lane.task for lane in list(self._lanes.values()) if lane.task is not None
                 and (rounds is None or any(r in rounds for _, r in lane.queue))]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one row: claim, deliver, record ---------------------------------------------------

    async def _claim(self, row_id: int) -> Notification | None:
        now = self.clock()
        async with transaction(self.sessions) as session:
            postgresql = session.get_bind().dialect.name == "postgresql"
            claimed = (await session.execute(
                _CLAIM_SKIP_LOCKED if postgresql else _CLAIM,
                {"row_id": row_id, "now": now, "lease_until": now + self.lease},
            )).one_or_none()
        if claimed is None:  # another worker has it, it was handed over, or it is no longer due
            return None
        return Notification(claimed.id, claimed.channel, claimed.recipient, claimed.kind, dict(claimed.payload),
                            claimed.identity_id, claimed.attempts)

    async def _deliver_one(self, row_id: int, stats: DispatchStats) -> None:
        notification = await self._claim(row_id)
        if notification is None:
            return
        self._claimed[notification.id] = notification
        try:
            await self._deliver_claimed(notification, stats)
        except asyncio.CancelledError:
            raise  # still claimed: ``close`` releases it
        except BaseException:
            self._claimed.pop(notification.id, None)
            raise
        self._claimed.pop(notification.id, None)

    async def _deliver_claimed(self, notification: Notification, stats: DispatchStats) -> None:
        notifier = self.notifiers.get(notification.channel)
        limit: asyncio.Timeout | None = None
        try:
            if notifier is None:
                raise LookupError(f"no notifier configured for channel {notification.channel!r}")
            async with asyncio.timeout(self.timeout) as limit:
                outcome = await notifier.deliver(notification)
        except Exception as exc:
            expired = isinstance(exc, TimeoutError) and limit is not None and limit.expired()
            error = f"TimeoutError: no answer within {self.timeout:g} s" if expired else f"{type(exc).__name__}: {exc}"
            await self._record_failure(notification, redact(error)[:1000], stats)
            return
        if outcome is Delivery.HELD:
            if await self._record(notification, status="held"):
                stats.held += 1
                metrics.DELIVERIES.labels(notification.channel, "held").inc()
        elif await self._record(notification, status="sent", sent_at=self.clock(), last_error=None):
            stats.sent += 1
            metrics.DELIVERIES.labels(notification.channel, "sent").inc()

    async def _record_failure(self, notification: Notification, error: str, stats: DispatchStats) -> None:
        what = f"outbox {notification.id} ({notification.kind} to {notification.channel})"
        if notification.attempts >= self.policy.max_attempts:
            # An enterprise message is never dropped: it waits for the user's next contact.
            status = "held" if notification.identity_id is not None else "dead"
            if await self._record(notification, status=status, last_error=error):
                if status == "held":
                    stats.held += 1
                else:
                    stats.dead += 1
                metrics.DELIVERIES.labels(notification.channel, status).inc()
                log.error("%s gave up after %d attempts: %s", what, notification.attempts, error)
            return
        retry_at = self.clock() + self.policy.delay(notification.attempts)
        if await self._record(notification, status=PENDING, next_attempt_at=retry_at, last_error=error):
            stats.retried += 1
            metrics.DELIVERIES.labels(notification.channel, "retried").inc()
            log.warning("%s attempt %d failed, retry at %s: %s", what, notification.attempts, retry_at.isoformat(),
                        error)

    async def _record(self, notification: Notification, **values: Any) -> bool:
        """Store the outcome if the row is still this claim; False if it was taken over."""
        columns = tuple(sorted(values))
        statement = _RECORD.get(columns)
        if statement is None:
            statement = _RECORD[columns] = _RECORD_WHERE.values({c: bindparam(f"new_{c}") for c in columns})
        params = {f"new_{c}": v for c, v in values.items()}
        async with transaction(self.sessions) as session:
            result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
                statement, {"row_id": notification.id, "claimed_attempts": notification.attempts, **params})
        if result.rowcount == 0:
            # Its lease ran out and another worker claimed it, it was handed over, or erased:
            # that one records the row; a second delivery is harmless (notifiers are idempotent).
            log.warning("outbox %d: no longer claimed by this worker; outcome %s not recorded", notification.id,
                        values.get("status"))
            return False
        return True

    # --- entry points ----------------------------------------------------------------------

    async def run_once(self) -> DispatchStats:
        """Deliver every notification due now; returns what happened to them."""
        round_ = await self._poll()
        try:
            await round_.wait()
        except asyncio.CancelledError:
            await self._stop({round_})
            raise
        return round_.stats

    async def close(self, grace: float = 10.0) -> None:
        """Stop gracefully (SIGTERM of a worker): claim nothing more, let the deliveries in flight
        finish (up to ``grace`` seconds), then release the claims of those cut off, so another
        worker delivers them at once instead of after their lease. Rows queued here but not yet
        claimed were never taken: they stay due for the others."""
        self._closing = True
        self.wakeup.set()
        tasks = [lane.task for lane in list(self._lanes.values()) if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        await self._stop()
        for notification in list(self._claimed.values()):
            try:
                await self._record(notification, status=PENDING, next_attempt_at=self.clock(),
                                   attempts=max(notification.attempts - 1, 0))
            except Exception:  # the lease runs out anyway
                log.exception("outbox %d: claim not released", notification.id)
        self._claimed.clear()

    async def run_forever(self, interval: float = 1.0) -> None:
        """Poll for due rows; ``wakeup.set()`` makes a fresh row go out without waiting. A poll
        does not wait for the deliveries it started: a slow channel never holds up the next one.
        Returns after :meth:`close`."""
        try:
            while not self._closing:
                try:
                    await self._poll()
                except Exception as exc:  # a database hiccup must not kill the loop
                    if is_unavailable(exc):
                        OUTAGE.mark_down(exc)  # once per outage, not every second
                    else:
                        log.exception("outbox dispatch round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), timeout=interval)
                self.wakeup.clear()
        finally:
            await self._stop()
