"""Live events (bot/events.py): in one process without Redis; across processes through Redis,
which counts the processes that heard an event; while Redis is away an event still reaches this
process's subscribers, and when the subscription comes back the subscribers are told to catch up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.events import EventBus
from tests.helpers.services import REDIS_URL, require_redis


class Inbox:
    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __call__(self, event: dict[str, Any]) -> None:
        await self.events.put(event)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), 5)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    await require_redis()
    yield f"qibot-test-{uuid.uuid4().hex[:10]}"


async def test_without_redis_events_stay_in_the_process() -> None:
    bus, inbox = EventBus(), Inbox()
    await bus.subscribe("webchat:u1", inbox)
    assert not bus.cluster
    assert await bus.publish("webchat:u1", {"n": 1}) == 1
    assert await bus.publish("webchat:nobody", {"n": 2}) == 0
    assert (await inbox.next()) == {"n": 1}
    await bus.unsubscribe("webchat:u1", inbox)
    assert await bus.publish("webchat:u1", {"n": 3}) == 0


async def test_through_redis_the_process_holding_the_topic_gets_it(prefix: str) -> None:
    a, b = EventBus(REDIS_URL, prefix), EventBus(REDIS_URL, prefix)
    await a.start()
    await b.start()
    try:
        assert await a.wait_connected(5) and await b.wait_connected(5)
        inbox = Inbox()
        await b.subscribe("webchat:u1", inbox)
        # A publishes; only B listens on the topic: one process heard it, in order.
        counts = [await a.publish("webchat:u1", {"n": i}) for i in range(5)]
        assert counts == [1] * 5
        assert [(await inbox.next())["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
        assert await a.publish("webchat:someone-else", {"n": 9}) == 0
        await b.unsubscribe("webchat:u1", inbox)
        assert await a.publish("webchat:u1", {"n": 10}) == 0
    finally:
        await a.close()
        await b.close()


async def test_redis_down_reaches_local_subscribers_only() -> None:
    bus, inbox = EventBus("redis://127.0.0.1:1/0", "qibot-test"), Inbox()  # nothing listens on port 1
    await bus.subscribe("webchat:u1", inbox)
    assert await bus.publish("webchat:u1", {"n": 1}) == 1
    assert await bus.publish("webchat:u2", {"n": 2}) == 0  # a page elsewhere: the caller holds the row
    assert (await inbox.next()) == {"n": 1}
    await bus.close()


async def test_a_lost_subscription_comes_back_and_asks_to_catch_up(prefix: str) -> None:
    bus, inbox = EventBus(REDIS_URL, prefix), Inbox()
    resynced = asyncio.Event()

    async def resync() -> None:
        resynced.set()

    bus.on_resync(resync)
    await bus.subscribe("webchat:u1", inbox)
    await bus.start()
    admin = Redis.from_url(REDIS_URL)
    try:
        assert await bus.wait_connected(5)
        # Redis drops the subscriber connection (as a restart does); only this test's, by name:
        # the machine's Redis is shared.
        ours = [c["id"] for c in await admin.client_list() if c.get("name") == f"{prefix}:events"]
        assert ours
        for client_id in ours:
            await admin.client_kill_filter(_id=client_id)
        await asyncio.wait_for(resynced.wait(), 10)
        assert await bus.wait_connected(5)
        # The topic was subscribed again: events flow as before.
        publisher = EventBus(REDIS_URL, prefix)
        assert await publisher.publish("webchat:u1", {"after": True}) == 1
        assert (await inbox.next()) == {"after": True}
        await publisher.close()
    finally:
        await admin.aclose()
        await bus.close()


async def test_closing_never_hangs_on_a_cancellation_the_redis_client_swallows(
    prefix: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cancellation landing inside the Redis client's read can be swallowed there (the read
    then returns nothing); closing the bus must still end within seconds, not wait forever (a
    CI run once hung at a fixture's teardown, here)."""
    from redis.asyncio.client import PubSub

    real = PubSub.get_message

    async def swallowing(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        try:
            return await real(self, *args, **kwargs)
        except asyncio.CancelledError:
            return None  # what a client that swallows the cancellation does

    monkeypatch.setattr(PubSub, "get_message", swallowing)
    bus = EventBus(REDIS_URL, prefix)
    await bus.start()
    assert await bus.wait_connected(5)
    await asyncio.wait_for(bus.close(), 10)
