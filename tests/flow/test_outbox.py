"""The outbox: a notifier that is down delays, never loses; retries back off; a row is
delivered once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.notify.base import Delivery, Notification, NotifierUnavailable
from bot.notify.dispatcher import OutboxDispatcher, RetryPolicy
from bot.runtime import Runtime
from bot.services import outbox
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Outbox
from tests.helpers.cases import outbox_row
from tests.helpers.clock import Clock


class FlakyNotifier:
    channel = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[int] = []

    async def deliver(self, notification: Notification) -> Delivery:
        if self.failures > 0:
            self.failures -= 1
            raise NotifierUnavailable("service down")
        self.delivered.append(notification.id)
        return Delivery.SENT


async def enqueue(runtime: Runtime, clock: Clock, identity_id: int | None = None) -> int:
    async with transaction(runtime.sessions) as session:
        row_id = await outbox.enqueue(session, channel="flaky", recipient="someone", kind="test",
                                      payload={"text": "您好，手机13812345678"}, now=clock(), identity_id=identity_id)
    assert row_id is not None
    return row_id


async def test_a_failing_notifier_delays_with_backoff_then_delivers_once(flow_runtime: Runtime, clock: Clock) -> None:
    notifier = FlakyNotifier(failures=2)
    dispatcher = OutboxDispatcher(flow_runtime.sessions, {"flaky": notifier}, clock=clock,
                                  policy=RetryPolicy(base_delay=10, max_delay=60, max_attempts=5))
    row_id = await enqueue(flow_runtime, clock)

    first = await dispatcher.run_once()
    assert first.retried == 1
    failed = await outbox_row(flow_runtime.sessions, row_id)
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.next_attempt_at == clock() + timedelta(seconds=10)
    assert "13812345678" not in (failed.last_error or "")  # errors are stored masked

    assert (await dispatcher.run_once()).handled == 0  # not due yet: no hammering
    clock.advance(seconds=10)
    assert (await dispatcher.run_once()).retried == 1
    # the delay doubled
    assert (await outbox_row(flow_runtime.sessions, row_id)).next_attempt_at == clock() + timedelta(seconds=20)
    clock.advance(seconds=20)
    assert (await dispatcher.run_once()).sent == 1
    clock.advance(hours=1)
    assert (await dispatcher.run_once()).handled == 0
    assert notifier.delivered == [row_id]
    assert (await outbox_row(flow_runtime.sessions, row_id)).status == "sent"


async def test_after_the_last_attempt_staff_rows_are_dead_and_enterprise_rows_wait(
    flow_runtime: Runtime, clock: Clock
) -> None:
    notifier = FlakyNotifier(failures=100)
    dispatcher = OutboxDispatcher(flow_runtime.sessions, {"flaky": notifier}, clock=clock,
                                  policy=RetryPolicy(base_delay=1, max_delay=1, max_attempts=3))
    async with transaction(flow_runtime.sessions) as session:
        identity = ChannelIdentity(channel="flaky", external_id="ent-x")
        session.add(identity)
        await session.flush()
        identity_id = identity.id
    staff = await enqueue(flow_runtime, clock)
    enterprise = await enqueue(flow_runtime, clock, identity_id=identity_id)
    for _ in range(3):
        await dispatcher.run_once()
        clock.advance(seconds=1)
    assert (await outbox_row(flow_runtime.sessions, staff)).status == "dead"
    assert (await outbox_row(flow_runtime.sessions, enterprise)).status == "held"  # handed over at next contact
    async with transaction(flow_runtime.sessions) as session:
        held = await outbox.take_held(session, identity_id, clock())
    assert [r.text for r in held] == ["您好，手机13812345678"]
    assert (await outbox_row(flow_runtime.sessions, enterprise)).status == "sent"


async def test_rows_for_channels_this_process_cannot_deliver_are_left_alone(
    flow_runtime: Runtime, clock: Clock
) -> None:
    row_id = await enqueue(flow_runtime, clock)  # channel "flaky": this dispatcher has no such notifier
    stats = await flow_runtime.dispatcher.run_once()
    assert stats.handled == 0
    assert (await outbox_row(flow_runtime.sessions, row_id)).status == "pending"


async def test_enqueue_with_a_dedup_key_is_idempotent(flow_runtime: Runtime, clock: Clock) -> None:
    async with transaction(flow_runtime.sessions) as session:
        first = await outbox.enqueue(session, channel="log", recipient="x", kind="k", payload={}, now=clock(),
                                     dedup_key="reminder:QI-2026-000001:1")
        second = await outbox.enqueue(session, channel="log", recipient="x", kind="k", payload={}, now=clock(),
                                      dedup_key="reminder:QI-2026-000001:1")
    assert first is not None and second is None
    async with flow_runtime.sessions() as session:
        rows = (await session.execute(select(Outbox).where(Outbox.dedup_key.is_not(None)))).scalars().all()
    assert len(rows) == 1


async def test_a_held_message_reaches_its_user_with_the_next_answer_and_no_one_else(
    flow_runtime: Runtime, clock: Clock
) -> None:
    """Whether anything is held is asked in the message's first statement: it must be this
    user's rows, whatever the ids of the outbox rows and of the other users."""
    from sqlalchemy import update

    from bot.messages import InboundMessage

    users = [f"visitor-{n}" for n in range(4)]
    for user in users:
        await flow_runtime.dialogue.handle(InboundMessage("flaky", user, "你好", message_id=f"{user}-1"))
    async with transaction(flow_runtime.sessions) as session:
        ids = {i.external_id: i.id for i in (await session.execute(select(ChannelIdentity))).scalars()}
    for _ in range(5):  # staff rows first, so no outbox id equals its user's identity id
        await enqueue(flow_runtime, clock)
    held = await enqueue(flow_runtime, clock, identity_id=ids["visitor-2"])
    async with transaction(flow_runtime.sessions) as session:
        await session.execute(update(Outbox).where(Outbox.id == held).values(status="held"))
    assert held != ids["visitor-2"]

    for user in users:
        result = await flow_runtime.dialogue.handle(InboundMessage("flaky", user, "谢谢", message_id=f"{user}-2"))
        texts = [r.text for r in result.replies]
        if user == "visitor-2":
            assert texts[0] == "您好，手机13812345678" and len(texts) > 1  # the held message, then the answer
        else:
            assert "您好，手机13812345678" not in texts
    assert (await outbox_row(flow_runtime.sessions, held)).status == "sent"
