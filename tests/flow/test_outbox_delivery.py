"""Outbox delivery happens outside the claiming transaction, per channel: a platform that hangs
delays its own rows only, a timeout is a failed attempt, a worker that died mid-send loses its
row to another after the lease, and a row is delivered once even with two workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import load_settings
from bot.delivery import DeliveryRuntime
from bot.notify.base import Delivery, Notification
from bot.notify.dispatcher import OutboxDispatcher, RetryPolicy
from bot.services import outbox
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Outbox
from tests.helpers.cases import outbox_row
from tests.helpers.clock import Clock

T = TypeVar("T")


async def soon(waiting: Awaitable[T]) -> T:
    """A bounded wait: a regression fails the test instead of hanging the suite."""
    async with asyncio.timeout(10):
        return await waiting


@dataclass
class Store:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


async def open_store(url: str) -> Store:
    await db.upgrade(url)
    engine = db.create_engine(url)
    return Store(engine, db.session_factory(engine))


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    yield store
    await store.engine.dispose()


@pytest.fixture
async def any_store(database_url: str) -> AsyncIterator[Store]:
    store = await open_store(database_url)
    yield store
    await store.engine.dispose()


class Recorder:
    """Delivers at once and remembers what it delivered; ``reached`` is set at the ``expect``-th row."""

    def __init__(self, channel: str, expect: int = 1) -> None:
        self.channel = channel
        self.delivered: list[int] = []
        self.expect = expect
        self.reached = asyncio.Event()

    async def deliver(self, notification: Notification) -> Delivery:
        self.delivered.append(notification.id)
        if len(self.delivered) == self.expect:
            self.reached.set()
        return Delivery.SENT


class Hanging:
    """A platform that never answers: every delivery waits for an event that never comes."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.started = asyncio.Event()
        self.never = asyncio.Event()
        self.calls = 0

    async def deliver(self, notification: Notification) -> Delivery:
        self.calls += 1
        self.started.set()
        await self.never.wait()
        return Delivery.SENT


async def add(store: Store, clock: Clock, channel: str, recipient: str = "someone",
              identity_id: int | None = None, text: str = "您好") -> int:
    async with transaction(store.sessions) as session:
        row_id = await outbox.enqueue(session, channel=channel, recipient=recipient, kind="test",
                                      payload={"text": text}, now=clock(), identity_id=identity_id)
    assert row_id is not None
    return row_id


async def identity(store: Store, channel: str, external_id: str) -> int:
    async with transaction(store.sessions) as session:
        found = ChannelIdentity(channel=channel, external_id=external_id)
        session.add(found)
        await session.flush()
        return found.id


async def test_a_hanging_channel_does_not_delay_another_channels_rows(sqlite_store: Store, clock: Clock) -> None:
    slow = Hanging("wechat")
    fast = Recorder("telegram", expect=2)
    dispatcher = OutboxDispatcher(sqlite_store.sessions, {"wechat": slow, "telegram": fast}, clock=clock,
                                  timeout=1.0, policy=RetryPolicy(base_delay=10))
    stuck = await add(sqlite_store, clock, "wechat")
    first = await add(sqlite_store, clock, "telegram", "commissioner")
    second = await add(sqlite_store, clock, "telegram", "commissioner")

    running = asyncio.create_task(dispatcher.run_once())
    await soon(slow.started.wait())
    await soon(fast.reached.wait())  # the recipient's rows go in order: the first is recorded by now
    assert (await outbox_row(sqlite_store.sessions, first)).status == "sent"
    assert (await outbox_row(sqlite_store.sessions, stuck)).status == "sending"  # still waiting for WeChat
    assert not running.done()

    stats = await soon(running)
    assert (stats.sent, stats.retried) == (2, 1)
    assert fast.delivered == [first, second]
    timed_out = await outbox_row(sqlite_store.sessions, stuck)
    assert (timed_out.status, timed_out.attempts) == ("pending", 1)
    assert timed_out.last_error == "TimeoutError: no answer within 1 s"
    assert timed_out.next_attempt_at == clock() + timedelta(seconds=10)


async def test_the_background_loop_keeps_polling_while_a_delivery_hangs(sqlite_store: Store, clock: Clock) -> None:
    """``run_forever`` (what ``qibot serve`` runs) does not wait for the deliveries a poll started:
    a row enqueued while WeChat hangs goes out at the next wake-up."""
    slow = Hanging("wechat")
    fast_sent = asyncio.Event()

    class Fast:
        channel = "console"

        async def deliver(self, notification: Notification) -> Delivery:
            fast_sent.set()
            return Delivery.SENT

    dispatcher = OutboxDispatcher(sqlite_store.sessions, {"wechat": slow, "console": Fast()}, clock=clock)
    stuck = await add(sqlite_store, clock, "wechat")
    loop = asyncio.create_task(dispatcher.run_forever(interval=3600))
    try:
        await soon(slow.started.wait())
        await add(sqlite_store, clock, "console", "manager")
        dispatcher.wakeup.set()  # what a committed turn does
        await soon(fast_sent.wait())
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await soon(loop)
    assert slow.calls == 1
    # stopped mid-send: due again after its lease
    assert (await outbox_row(sqlite_store.sessions, stuck)).status == "sending"


async def test_a_timeout_is_retried_with_backoff_until_staff_rows_die_and_enterprise_rows_wait(
    sqlite_store: Store, clock: Clock
) -> None:
    slow = Hanging("wecom")
    dispatcher = OutboxDispatcher(sqlite_store.sessions, {"wecom": slow}, clock=clock, timeout=0.05,
                                  policy=RetryPolicy(base_delay=10, max_delay=60, max_attempts=3))
    enterprise_id = await identity(sqlite_store, "wecom", "ent-x")
    staff = await add(sqlite_store, clock, "wecom", "commissioner")
    enterprise = await add(sqlite_store, clock, "wecom", "ent-x", identity_id=enterprise_id, text="您的诉求已受理")

    assert (await soon(dispatcher.run_once())).retried == 2
    assert (await outbox_row(sqlite_store.sessions, staff)).next_attempt_at == clock() + timedelta(seconds=10)
    assert (await soon(dispatcher.run_once())).handled == 0  # not due yet: no hammering
    clock.advance(seconds=10)
    assert (await soon(dispatcher.run_once())).retried == 2
    # the delay doubled
    assert (await outbox_row(sqlite_store.sessions, staff)).next_attempt_at == clock() + timedelta(seconds=20)
    clock.advance(seconds=20)
    last = await soon(dispatcher.run_once())
    assert (last.dead, last.held) == (1, 1)
    assert slow.calls == 6
    assert (await outbox_row(sqlite_store.sessions, staff)).status == "dead"
    assert (await outbox_row(sqlite_store.sessions, enterprise)).status == "held"
    async with transaction(sqlite_store.sessions) as session:
        handed = await outbox.take_held(session, enterprise_id, clock())
    assert [reply.text for reply in handed] == ["您的诉求已受理"]


async def test_a_row_whose_worker_died_mid_send_goes_out_from_another_after_the_lease(
    any_store: Store, clock: Clock
) -> None:
    dead_worker = Hanging("wechat")
    crashed = OutboxDispatcher(any_store.sessions, {"wechat": dead_worker}, clock=clock, timeout=60, lease=90)
    row_id = await add(any_store, clock, "wechat")
    running = asyncio.create_task(crashed.run_once())
    await soon(dead_worker.started.wait())
    running.cancel()  # the worker is gone in the middle of the push
    with pytest.raises(asyncio.CancelledError):
        await soon(running)
    assert (await outbox_row(any_store.sessions, row_id)).status == "sending"

    recorder = Recorder("wechat")
    other = OutboxDispatcher(any_store.sessions, {"wechat": recorder}, clock=clock)
    clock.advance(seconds=89)
    assert (await other.run_once()).handled == 0  # the lease still holds: maybe it is still sending
    clock.advance(seconds=1)
    assert (await other.run_once()).sent == 1
    assert recorder.delivered == [row_id]
    delivered = await outbox_row(any_store.sessions, row_id)
    assert (delivered.status, delivered.attempts) == ("sent", 2)


async def test_no_connection_is_held_while_a_notifier_delivers(any_store: Store, clock: Clock) -> None:
    """A notifier may write to the database itself (WeCom queues its team post): with the claim
    committed and no connection held, that works on SQLite's single writer too."""
    seen: list[tuple[int, str, int]] = []

    class Writing:
        channel = "wecom"

        async def deliver(self, notification: Notification) -> Delivery:
            checked_out = any_store.engine.pool.checkedout()  # type: ignore[attr-defined]
            async with transaction(any_store.sessions) as session:
                await outbox.enqueue(session, channel="wecom_robot", recipient="team", kind="test",
                                     payload={"text": "团队通知"}, now=clock())
                mine = await session.get(Outbox, notification.id)
                assert mine is not None
                seen.append((checked_out, mine.status, mine.attempts))
            return Delivery.SENT

    dispatcher = OutboxDispatcher(any_store.sessions, {"wecom": Writing()}, clock=clock)
    row_id = await add(any_store, clock, "wecom")
    assert (await soon(dispatcher.run_once())).sent == 1
    assert seen == [(0, "sending", 1)]  # the claim was committed before the push
    assert (await outbox_row(any_store.sessions, row_id)).status == "sent"
    async with any_store.sessions() as session:
        assert (await session.execute(select(Outbox.status).where(Outbox.channel == "wecom_robot"))).scalar_one() \
            == "pending"


async def test_each_channel_has_bounded_concurrency_and_a_recipient_gets_its_rows_in_order(
    sqlite_store: Store, clock: Clock
) -> None:
    release = asyncio.Event()
    both_busy = asyncio.Event()
    busy: Counter[str] = Counter()
    most = 0
    order: dict[str, list[int]] = {}

    class Gated:
        channel = "telegram"

        async def deliver(self, notification: Notification) -> Delivery:
            nonlocal most
            assert busy[notification.recipient] == 0  # never two rows to one recipient at once
            busy[notification.recipient] += 1
            most = max(most, sum(busy.values()))
            if sum(busy.values()) == 2:
                both_busy.set()
            await release.wait()
            busy[notification.recipient] -= 1
            order.setdefault(notification.recipient, []).append(notification.id)
            return Delivery.SENT

    dispatcher = OutboxDispatcher(sqlite_store.sessions, {"telegram": Gated()}, clock=clock, concurrency=2)
    rows = {name: [await add(sqlite_store, clock, "telegram", name) for _ in range(3)] for name in ("a", "b", "c")}
    running = asyncio.create_task(dispatcher.run_once())
    await soon(both_busy.wait())
    release.set()
    assert (await soon(running)).sent == 9
    assert most == 2
    assert order == rows


async def test_the_hand_over_leaves_a_row_being_sent_to_its_sender(any_store: Store, clock: Clock) -> None:
    """A failing enterprise row is handed over at the user's next message, unless a worker is
    pushing it at that moment: then the push delivers it, and only the push."""
    enterprise_id = await identity(any_store, "wechat", "ent-y")
    row_id = await add(any_store, clock, "wechat", "ent-y", identity_id=enterprise_id, text="专员回复")
    failing = Hanging("wechat")
    await soon(OutboxDispatcher(any_store.sessions, {"wechat": failing}, clock=clock, timeout=0.05).run_once())
    assert (await outbox_row(any_store.sessions, row_id)).last_error  # failing: the hand-over would take it

    clock.advance(hours=1)
    pushing = Hanging("wechat")
    running = asyncio.create_task(
        OutboxDispatcher(any_store.sessions, {"wechat": pushing}, clock=clock).run_once())
    await soon(pushing.started.wait())
    async with transaction(any_store.sessions) as session:
        assert await outbox.take_held(session, enterprise_id, clock()) == ()
    pushing.never.set()  # the platform answers after all
    assert (await soon(running)).sent == 1
    assert (await outbox_row(any_store.sessions, row_id)).status == "sent"


async def test_a_row_claimed_between_the_hand_overs_look_and_its_update_is_left_to_the_push(
    sqlite_store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite nothing locks the rows the hand-over looked at: another process may claim one
    before the hand-over marks it. The hand-over then leaves it (no message twice). The stale look
    is played by a query that ignores the status."""
    enterprise_id = await identity(sqlite_store, "wechat", "ent-z")
    row_id = await add(sqlite_store, clock, "wechat", "ent-z", identity_id=enterprise_id, text="专员回复")
    pushing = Hanging("wechat")
    running = asyncio.create_task(OutboxDispatcher(sqlite_store.sessions, {"wechat": pushing}, clock=clock).run_once())
    await soon(pushing.started.wait())
    monkeypatch.setattr(outbox, "_HELD", select(Outbox).where(Outbox.identity_id == bindparam("identity_id")))
    async with transaction(sqlite_store.sessions) as session:
        assert await outbox.take_held(session, enterprise_id, clock()) == ()
    assert (await outbox_row(sqlite_store.sessions, row_id)).status == "sending"
    pushing.never.set()
    assert (await soon(running)).sent == 1


async def test_two_workers_on_postgresql_deliver_each_row_once(postgres_url: str, clock: Clock) -> None:
    stores = [await open_store(postgres_url) for _ in range(2)]
    delivered: Counter[int] = Counter()

    class Counting:
        def __init__(self, channel: str) -> None:
            self.channel = channel

        async def deliver(self, notification: Notification) -> Delivery:
            delivered[notification.id] += 1
            await asyncio.sleep(0)  # let the other worker run in between
            return Delivery.SENT

    try:
        channels = ("wechat", "telegram", "wecom")
        ids = [await add(stores[0], clock, channels[i % 3], f"user-{i % 7}") for i in range(90)]
        workers = [OutboxDispatcher(store.sessions, {c: Counting(c) for c in channels}, clock=clock, batch=20)
                   for store in stores]
        total = 0
        while total < len(ids):
            stats = await asyncio.gather(*(worker.run_once() for worker in workers))
            handled = sum(s.handled for s in stats)
            assert handled, "rows left undelivered"
            total += handled
        assert total == len(ids)
        assert delivered == Counter(ids)  # every row exactly once
        async with stores[0].sessions() as session:
            assert set((await session.execute(select(Outbox.status))).scalars()) == {"sent"}
    finally:
        for store in stores:
            await store.engine.dispose()


async def test_the_outbox_settings_reach_the_dispatcher(tmp_path: Path) -> None:
    """QIBOT_OUTBOX_CONCURRENCY and QIBOT_OUTBOX_TIMEOUT are what the running dispatcher uses."""
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "data"), "QIBOT_OUTBOX_CONCURRENCY": "2",
                                      "QIBOT_OUTBOX_TIMEOUT": "7.5"})
    runtime = await DeliveryRuntime.start(settings)
    try:
        assert (runtime.dispatcher.concurrency, runtime.dispatcher.timeout) == (2, 7.5)
    finally:
        await runtime.close()
