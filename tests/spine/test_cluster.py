"""Several workers on one PostgreSQL and one Redis (issue 16): two app instances, each with its
own runtime (its own engine, dispatcher, event bus and open pages), as two ``qibot serve``
processes are. A push reaches the page whichever worker delivers the row; one visitor's messages
are handled in order whichever worker they reach (a case is opened once); nothing is lost
while Redis is away; one recipient's notifications go out in order across dispatchers; the
periodic jobs run once per interval across workers; a stopping dispatcher finishes or gives back
what it claimed."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.webchat import COOKIE
from bot.config import Settings
from bot.delivery import DeliveryRuntime
from bot.jobs import run_jobs_if_due
from bot.notify.base import Delivery, Notification
from bot.runtime import Runtime
from bot.services import cases, outbox
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import MessageLog, ServiceCase
from intents.classifier import Nlu
from tests.helpers.cases import outbox_row
from tests.helpers.clock import Clock
from tests.helpers.services import REDIS_URL, require_redis

INTAKE = ["我要办理 电子秤需要检定", "厦门示例超市有限公司", "91110000802100433B", "林店长", "13812345678", "湖里", "2"]


@pytest.fixture
async def cluster_settings(settings: Settings, postgres_url: str) -> AsyncIterator[Settings]:
    """PostgreSQL and Redis, with a Redis prefix of this test's own (the machine's Redis is shared)."""
    await require_redis()
    prefix = f"qibot-test-{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(settings, database_url=postgres_url, redis_url=REDIS_URL, redis_prefix=prefix)
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


Workers = Callable[[int], Awaitable[list[tuple[Runtime, TestClient]]]]


@pytest.fixture
async def workers(cluster_settings: Settings, nlu: Nlu, knowledge: KnowledgeService,
                  aiohttp_client: Any) -> AsyncIterator[Workers]:
    """``await workers(2)``: that many runtimes on the same database and Redis, each behind its
    own app (cookies are per request, as separate browsers' are)."""
    started: list[Runtime] = []

    async def make(count: int, settings: Settings = cluster_settings) -> list[tuple[Runtime, TestClient]]:
        made = []
        for _ in range(count):
            runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
            started.append(runtime)
            client = await aiohttp_client(create_app(settings, runtime), cookie_jar=DummyCookieJar())
            made.append((runtime, client))
        async with transaction(made[0][0].sessions) as session:
            await load_demo(session)
        if settings.redis_url == REDIS_URL:
            for runtime, _ in made:
                assert await runtime.events.wait_connected(5)
        return made

    yield make
    for runtime in started:
        await runtime.close()


class Visitor:
    """One browser, whose requests may reach any worker (nginx spreads them)."""

    def __init__(self, token: str) -> None:
        self.token = token

    @classmethod
    async def arrive(cls, client: TestClient) -> Visitor:
        response = await client.get("/")
        return cls(response.cookies[COOKIE].value)

    def headers(self, client: TestClient) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.token}", "Origin": str(client.make_url("/")).rstrip("/")}

    async def say(self, client: TestClient, text: str, message_id: str | None = None) -> list[str]:
        body: dict[str, Any] = {"text": text} | ({"id": message_id} if message_id else {})
        response = await client.post("/api/chat/messages", json=body, headers=self.headers(client))
        assert response.status == 200, await response.text()
        if COOKIE in response.cookies:  # rotated after personal data: follow it
            self.token = response.cookies[COOKIE].value
        return [r["text"] for r in (await response.json())["replies"]]

    def socket(self, client: TestClient) -> Any:
        return client.ws_connect("/api/chat/ws", headers=self.headers(client))


async def open_case(visitor: Visitor, a: TestClient, b: TestClient) -> str:
    """The intake conversation, its messages alternating between the workers; ``确认`` on A."""
    for i, text in enumerate(INTAKE):
        await visitor.say(a if i % 2 else b, text)
    replies = await visitor.say(a, "确认")
    number = next((word for r in replies for word in r.split() if word.startswith("QI-")), None)
    assert number is not None or any("QI-" in r for r in replies), replies
    async with transaction_for(a) as session:
        return str((await session.execute(select(ServiceCase.number))).scalar_one())


def transaction_for(client: TestClient) -> Any:
    from bot.app import RUNTIME

    return transaction(client.app[RUNTIME].sessions)


async def commissioner_replies(runtime: DeliveryRuntime, number: str, text: str) -> None:
    async with transaction(runtime.sessions) as session:
        case = await cases.require_case(session, number)
        actor = await cases.commissioner_for_action(session, case, None)
        await cases.reply(session, case, actor, text, runtime.now())


async def pushed_texts(ws: Any, wanted: str) -> list[str]:
    """Push frames until one carries ``wanted`` (5 s at most each)."""
    texts: list[str] = []
    while not any(wanted in t for t in texts):
        frame = await ws.receive_json(timeout=10)
        if frame["type"] == "push":
            texts += [r["text"] for r in frame["replies"]]
    return texts


# --- pushes across workers ------------------------------------------------------------------------


async def test_a_push_reaches_the_page_on_the_other_worker(workers: Workers, cluster_settings: Settings) -> None:
    (runtime_a, a), (_, b) = await workers(2)
    visitor = await Visitor.arrive(a)
    number = await open_case(visitor, a, b)
    async with visitor.socket(b) as ws:  # the page's socket is held by worker B
        await commissioner_replies(runtime_a, number, "样品请周三前送到")
        stats = await runtime_a.dispatcher.run_once()  # worker A delivers: it has no socket of this visitor
        assert stats.held == 0
        assert any("样品请周三前送到" in t for t in await pushed_texts(ws, "样品请周三前送到"))

        # The delivery worker (no pages, no NLU) reaches the page as well.
        delivery = await DeliveryRuntime.start(cluster_settings, migrate=False)
        try:
            assert "webchat" in delivery.dispatcher.notifiers
            await commissioner_replies(runtime_a, number, "检定安排在周四上午")
            stats = await delivery.dispatcher.run_once()
            assert stats.sent >= 1 and stats.held == 0
            assert any("检定安排在周四上午" in t for t in await pushed_texts(ws, "检定安排在周四上午"))
        finally:
            await delivery.close()


async def test_without_a_page_anywhere_the_push_is_held_for_the_next_contact(workers: Workers) -> None:
    (runtime_a, a), (_, b) = await workers(2)
    visitor = await Visitor.arrive(a)
    number = await open_case(visitor, a, b)
    await runtime_a.dispatcher.run_once()
    await commissioner_replies(runtime_a, number, "报告已出具")
    stats = await runtime_a.dispatcher.run_once()
    assert stats.held >= 1  # no page of the visitor on any worker
    # A page opening on B catches up from the database: the held message is pushed at once.
    async with visitor.socket(b) as ws:
        assert any("报告已出具" in t for t in await pushed_texts(ws, "报告已出具"))
    replies = await visitor.say(a, "谢谢")
    assert not any("报告已出具" in r for r in replies)  # shown once, not again with the next answer


async def test_redis_away_nothing_is_lost(workers: Workers, cluster_settings: Settings) -> None:
    """Redis unreachable from the start: pages on other workers are not reachable live, the row
    is held, and the page gets it from the database when its socket (re)connects."""
    dead = dataclasses.replace(cluster_settings, redis_url="redis://127.0.0.1:1/0")
    (runtime_a, a), (_, b) = await workers(2, dead)  # type: ignore[call-arg]
    visitor = await Visitor.arrive(a)
    number = await open_case(visitor, a, b)
    await runtime_a.dispatcher.run_once()
    async with visitor.socket(b) as ws:
        await commissioner_replies(runtime_a, number, "请补充计量器具清单")
        stats = await runtime_a.dispatcher.run_once()
        assert stats.held >= 1  # B's page could not be reached through Redis
    async with visitor.socket(b) as ws:  # the page reconnects (or reloads): caught up
        assert any("请补充计量器具清单" in t for t in await pushed_texts(ws, "请补充计量器具清单"))


async def test_a_lost_subscription_catches_up_when_redis_is_back(workers: Workers, cluster_settings: Settings) -> None:
    (runtime_a, a), (_, b) = await workers(2)
    visitor = await Visitor.arrive(a)
    number = await open_case(visitor, a, b)
    await runtime_a.dispatcher.run_once()
    async with visitor.socket(b) as ws:
        admin = Redis.from_url(REDIS_URL)
        try:
            for client in await admin.client_list():  # this test's subscriber connections only
                if client.get("name") == f"{cluster_settings.redis_prefix}:events":
                    await admin.client_kill_filter(_id=client["id"])
        finally:
            await admin.aclose()
        await commissioner_replies(runtime_a, number, "明天上午上门")
        await runtime_a.dispatcher.run_once()  # pushed live if B was back already, else held
        texts = await pushed_texts(ws, "明天上午上门")  # either way the page shows it
        assert sum("明天上午上门" in t for t in texts) == 1


# --- one visitor, two workers ------------------------------------------------------------------


async def test_one_visitors_messages_on_two_workers_open_one_case(workers: Workers) -> None:
    (runtime_a, a), (_, b) = await workers(2)
    visitor = await Visitor.arrive(a)
    for i, text in enumerate(INTAKE):
        await visitor.say(a if i % 2 else b, text)
    # The visitor taps 确认 twice (two tabs, a double click): both workers at once, two ids.
    first, second = await asyncio.gather(visitor.say(a, "确认", "c-1"), visitor.say(b, "确认", "c-2"))
    async with transaction(runtime_a.sessions) as session:
        assert (await session.execute(select(func.count()).select_from(ServiceCase))).scalar_one() == 1
    assert sum(any("QI-" in r for r in replies) for replies in (first, second)) >= 1
    # The same message id on both workers (a page re-sending after a reconnect): handled once.
    again = await asyncio.gather(visitor.say(a, "我的需求进度", "p-1"), visitor.say(b, "我的需求进度", "p-1"))
    assert again[0] == again[1]
    async with transaction(runtime_a.sessions) as session:
        logged = (await session.execute(select(func.count()).where(
            MessageLog.direction == "in", MessageLog.channel_message_id == "p-1"))).scalar_one()
    assert logged == 1


# --- the outbox across dispatchers ----------------------------------------------------------------


class Recorder:
    """A notifier for a test channel: even rows slow, odd ones fast, so that two dispatchers
    working on one recipient at once would deliver out of order."""

    channel = "ordered"

    def __init__(self, log: list[int]) -> None:
        self.log = log

    async def deliver(self, notification: Notification) -> Delivery:
        n = int(notification.payload["n"])
        await asyncio.sleep(0.05 if n % 2 == 0 else 0)
        self.log.append(n)
        return Delivery.SENT


@pytest.fixture
async def two_dispatchers(database_url: str, settings: Settings) -> AsyncIterator[tuple[DeliveryRuntime, ...]]:
    shared = dataclasses.replace(settings, database_url=database_url)
    first = await DeliveryRuntime.start(shared)
    second = await DeliveryRuntime.start(shared, migrate=False)
    yield first, second
    await first.close()
    await second.close()


async def test_one_recipients_rows_go_out_in_order_across_dispatchers(
    two_dispatchers: tuple[DeliveryRuntime, DeliveryRuntime],
) -> None:
    delivered: list[int] = []
    for runtime in two_dispatchers:
        runtime.dispatcher.register(Recorder(delivered))
    first = two_dispatchers[0]
    async with transaction(first.sessions) as session:
        for n in range(12):
            await outbox.enqueue(session, channel="ordered", recipient="one", kind="reply", payload={"n": n},
                                 now=first.now() - timedelta(seconds=1))
    for _ in range(30):
        await asyncio.gather(*(runtime.dispatcher.run_once() for runtime in two_dispatchers))
        if len(delivered) >= 12:
            break
    assert delivered == list(range(12))  # each once, in order


async def test_the_periodic_jobs_run_once_per_interval_across_workers(
    two_dispatchers: tuple[DeliveryRuntime, DeliveryRuntime], clock: Clock,
) -> None:
    for runtime in two_dispatchers:
        runtime.now = clock  # type: ignore[method-assign]
    first, second = two_dispatchers
    rounds = await asyncio.gather(run_jobs_if_due(first, "worker-1", 60), run_jobs_if_due(second, "worker-2", 60))
    assert sum(r is not None for r in rounds) == 1
    clock.advance(seconds=30)
    assert await run_jobs_if_due(second, "worker-2", 60) is None  # within the interval: not again
    clock.advance(seconds=31)
    assert await run_jobs_if_due(second, "worker-2", 60) is not None  # the interval is over: anyone


class Gate:
    """A notifier that waits until the test lets it finish."""

    channel = "gated"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, notification: Notification) -> Delivery:
        self.started.set()
        await self.release.wait()
        return Delivery.SENT


async def test_a_stopping_dispatcher_finishes_or_gives_back_its_claims(
    two_dispatchers: tuple[DeliveryRuntime, DeliveryRuntime],
) -> None:
    runtime = two_dispatchers[0]
    gate = Gate()
    runtime.dispatcher.register(gate)
    async with transaction(runtime.sessions) as session:
        row_id = await outbox.enqueue(session, channel="gated", recipient="x", kind="reply", payload={},
                                      now=runtime.now() - timedelta(seconds=1))
    assert row_id is not None
    loop = asyncio.create_task(runtime.dispatcher.run_forever(interval=0.05))
    await asyncio.wait_for(gate.started.wait(), 10)
    await runtime.dispatcher.close(grace=0.05)  # the delivery does not finish in time
    await asyncio.wait_for(loop, 5)
    row = await outbox_row(runtime.sessions, row_id)
    assert (row.status, row.attempts) == ("pending", 0)  # given back, due now: another worker takes it
    assert row.next_attempt_at <= runtime.now()

    other = two_dispatchers[1]
    finishing = Gate()
    finishing.release.set()
    other.dispatcher.register(finishing)
    assert (await other.dispatcher.run_once()).sent == 1
    assert (await outbox_row(other.sessions, row_id)).status == "sent"
