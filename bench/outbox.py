"""Outbox delivery with one slow platform: how long the other channels' rows wait.

N rows over three channels; one channel's notifier takes ``--slow-ms`` per row (a platform that
answers slowly), the other two answer at once. Measured for the dispatcher before issue 14
(a frozen copy below: one row at a time, delivered inside the transaction that claims it) and
for the current one (claim, deliver outside any transaction, record; per-channel concurrency):
the time until every fast-channel row is delivered, and until every row is.

    .venv/bin/python bench/outbox.py [--rows 150] [--slow-ms 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.notify.base import Delivery, Notification, Notifier
from bot.notify.dispatcher import DispatchStats, OutboxDispatcher, RetryPolicy
from bot.privacy import redact
from bot.services import outbox
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import Outbox
from bot.storage.types import utcnow

CHANNELS = ("wechat", "telegram", "wecom")  # the first is the slow one
RECIPIENTS = 10  # per channel


class FrozenDispatcher:
    """The dispatcher as it was before issue 14 (``run_once`` only), kept as the baseline."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], notifiers: Mapping[str, Notifier], *,
                 policy: RetryPolicy | None = None, batch: int = 50,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions, self.notifiers = sessions, dict(notifiers)
        self.policy, self.batch, self.clock = policy or RetryPolicy(), batch, clock

    async def _due_ids(self) -> list[int]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Outbox.id)
                .where(Outbox.status == "pending", Outbox.next_attempt_at <= self.clock(),
                       Outbox.channel.in_(list(self.notifiers)))
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(self.batch)
            )
            return list(rows.scalars())

    async def run_once(self) -> DispatchStats:
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
            if row is None:
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
                    row.status = "dead"
                    stats.dead += 1
                else:
                    row.next_attempt_at = now + self.policy.delay(row.attempts)
                    stats.retried += 1
                return
            if outcome is Delivery.HELD:
                row.status = "held"
                stats.held += 1
            else:
                row.status, row.sent_at, row.last_error = "sent", now, None
                stats.sent += 1


class Timed:
    """A notifier that takes ``delay`` seconds per row and notes when its last row went out."""

    def __init__(self, channel: str, delay: float, expected: int, started: float) -> None:
        self.channel, self.delay, self.expected, self.started = channel, delay, expected, started
        self.count = 0
        self.done_after = float("nan")

    async def deliver(self, notification: Notification) -> Delivery:
        if self.delay:
            await asyncio.sleep(self.delay)  # the platform's answer time
        self.count += 1
        if self.count == self.expected:
            self.done_after = time.perf_counter() - self.started
        return Delivery.SENT


async def fill(sessions: async_sessionmaker[AsyncSession], rows: int) -> None:
    async with transaction(sessions) as session:
        await session.execute(delete(Outbox))
        now = utcnow()
        for i in range(rows):
            channel = CHANNELS[i % len(CHANNELS)]
            await outbox.enqueue(session, channel=channel, recipient=f"{channel}-{(i // 3) % RECIPIENTS}",
                                 kind="bench", payload={"text": f"通知 {i}"}, now=now)


async def measure(make: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], rows: int,
                  slow: float) -> tuple[float, float, float]:
    """(seconds until the fast channels are done, until the slow one is, until run_once returns)."""
    await fill(sessions, rows)
    started = time.perf_counter()
    per_channel = {c: len(range(i, rows, len(CHANNELS))) for i, c in enumerate(CHANNELS)}
    notifiers = {c: Timed(c, slow if c == CHANNELS[0] else 0.0, per_channel[c], started) for c in CHANNELS}
    dispatcher = make(sessions, notifiers, batch=rows)
    stats = await dispatcher.run_once()
    total = time.perf_counter() - started
    assert stats.sent == rows, stats
    fast = max(n.done_after for c, n in notifiers.items() if c != CHANNELS[0])
    return fast, notifiers[CHANNELS[0]].done_after, total


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=150)
    parser.add_argument("--slow-ms", type=float, default=200.0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='qibot-outbox-')) / 'bench.db'}"
    await db.upgrade(url)
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    slow = args.slow_ms / 1000
    try:
        print(f"outbox: {args.rows} rows over {len(CHANNELS)} channels, {CHANNELS[0]} answers in "
              f"{args.slow_ms:g} ms, database: {engine.dialect.name}")
        print(f"{'dispatcher':>22} {'fast channels s':>16} {'slow channel s':>15} {'run_once s':>11}")
        results = {}
        for name, make in (("before (frozen copy)", FrozenDispatcher), ("now", OutboxDispatcher)):
            results[name] = await measure(make, sessions, args.rows, slow)
            fast, slow_done, total = results[name]
            print(f"{name:>22} {fast:>16.3f} {slow_done:>15.3f} {total:>11.3f}")
        before, now = results["before (frozen copy)"][0], results["now"][0]
        print(f"fast channels delivered {before / now:.0f}x sooner")
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
