"""Issue 13, point 1: abuse limits against the real aiohttp app. Floods are refused, bursts a
person makes pass, WebSockets are bounded per address and per session, refusals are logged and
counted for staff, and with Redis the limits hold across two app instances (two workers)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import DummyCookieJar, WSMsgType
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.webchat import COOKIE
from bot.config import ConfigError, Settings, load_settings
from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.services.limits import Limiter, Refusal, Ticket, address_key, client_address, parse_networks
from bot.storage.db import transaction
from bot.storage.models import Complaint, LimitRefusal, Outbox, ServiceCase
from intents.classifier import Nlu
from tests.helpers.cli import invoke
from tests.helpers.services import REDIS_URL, require_redis

Client = Callable[..., Awaitable[TestClient]]
LIMIT_TEXT = "您发送得有点快"
# A handoff that says what it is for: connected at once (a bare "转人工" may be asked what for first).
HANDOFF = "转人工，有个问题想直接问专员"


async def start(settings: Settings, nlu: Nlu, knowledge: KnowledgeService, **changes: Any) -> Runtime:
    return await Runtime.start(dataclasses.replace(settings, **changes), nlu=nlu, knowledge=knowledge)


@pytest.fixture
async def make_client(aiohttp_client: Client) -> Callable[[Runtime], Awaitable[TestClient]]:
    """A client that keeps no cookies: each request names its own session, as separate browsers do."""
    async def make(runtime: Runtime) -> TestClient:
        return await aiohttp_client(create_app(runtime.settings, runtime), cookie_jar=DummyCookieJar())
    return make


class Visitor:
    """One browser: its own session cookie, optionally its own (forwarded) address."""

    def __init__(self, client: TestClient, token: str, address: str | None = None) -> None:
        self.client, self.token, self.address = client, token, address

    @classmethod
    async def arrive(cls, client: TestClient, address: str | None = None) -> Visitor:
        response = await client.get("/", headers=cls._forwarded(address))
        assert response.status == 200
        return cls(client, response.cookies[COOKIE].value, address)

    @staticmethod
    def _forwarded(address: str | None) -> dict[str, str]:
        return {"X-Forwarded-For": address} if address else {}

    def headers(self) -> dict[str, str]:
        origin = str(self.client.make_url("/")).rstrip("/")
        return {"Cookie": f"{COOKIE}={self.token}", "Origin": origin, **self._forwarded(self.address)}

    async def say(self, text: str) -> list[str]:
        response = await self.client.post("/api/chat/messages", json={"text": text}, headers=self.headers())
        assert response.status == 200, await response.text()
        if COOKIE in response.cookies:  # a new session id (given after personal data): follow it
            self.token = response.cookies[COOKIE].value
        return [r["text"] for r in (await response.json())["replies"]]

    async def socket(self) -> Any:
        return await self.client.ws_connect("/api/chat/ws", headers=self.headers())


async def count(runtime: Runtime, stmt: Any) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def gather_bounded(coros: list[Awaitable[Any]], width: int = 30) -> list[Any]:
    gate = asyncio.Semaphore(width)

    async def one(coro: Awaitable[Any]) -> Any:
        async with gate:
            return await coro
    return await asyncio.gather(*(one(c) for c in coros))


# --- pure parts ------------------------------------------------------------------------------------

def test_forwarded_addresses_are_believed_only_from_trusted_proxies() -> None:
    trusted = parse_networks("127.0.0.1, 10.0.0.0/8")
    assert client_address("203.0.113.9", "198.51.100.1", trusted) == "203.0.113.9"  # not a proxy: ignored
    assert client_address("127.0.0.1", "198.51.100.1", trusted) == "198.51.100.1"
    # The client may write anything left of what our proxies appended: read from the right.
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3", trusted) == "198.51.100.1"
    assert client_address("127.0.0.1", "not-an-ip", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"  # no proxies configured
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert address_key("::ffff:198.51.100.7") == "198.51.100.7"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("QIBOT_LIMIT_MESSAGES", "lots", "QIBOT_LIMIT_MESSAGES"),
    ("QIBOT_LIMIT_OPENINGS_PER_IP", "10 per fortnight", "QIBOT_LIMIT_OPENINGS_PER_IP"),
    ("QIBOT_LIMIT_WS_PER_IP", "-1", "QIBOT_LIMIT_WS_PER_IP"),
    ("QIBOT_REDIS_URL", "http://127.0.0.1:6379", "QIBOT_REDIS_URL"),
    ("QIBOT_TRUSTED_PROXIES", "127.0.0.1, nginx", "QIBOT_TRUSTED_PROXIES"),
])
def test_a_bad_limit_setting_stops_the_start_naming_it(tmp_path: Any, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path), name: value})


def test_limits_can_be_turned_off(tmp_path: Any) -> None:
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path), "QIBOT_LIMIT_MESSAGES": "",
                                      "QIBOT_LIMIT_WS_PER_IP": "0"})
    assert Limiter(settings).messages == () and settings.limit_ws_per_ip == 0


async def test_a_pasted_paragraph_passes_and_a_flood_does_not(settings: Settings) -> None:
    limiter = Limiter(settings)
    message = InboundMessage(channel="wechat", user_id="openid-1", text="第一行")
    burst = [await limiter.check_message(message) for _ in range(5)]
    assert burst == [None] * 5
    flood = [await limiter.check_message(message) for _ in range(100)]
    allowed = sum(r is None for r in flood)
    assert allowed == 12 - 5  # 12 in any 10 seconds
    assert all(isinstance(r, Refusal) and r.text_key == "limit_messages" for r in flood if r is not None)
    # Another user, and the terminal chat, are not affected.
    assert await limiter.check_message(dataclasses.replace(message, user_id="openid-2")) is None
    assert await limiter.check_message(dataclasses.replace(message, channel="cli")) is None
    await limiter.close()


async def test_an_unreachable_redis_falls_back_to_counting_in_memory(settings: Settings) -> None:
    limiter = Limiter(dataclasses.replace(settings, redis_url="redis://127.0.0.1:9/0"))
    assert limiter.backend == "redis" and not await limiter.ping()
    message = InboundMessage(channel="wechat", user_id="openid-1", text="你好")
    results = [await limiter.check_message(message) for _ in range(20)]
    assert sum(r is None for r in results) == 12
    ticket = await limiter.acquire_connection("webchat", "198.51.100.1", "s1")
    assert isinstance(ticket, Ticket)
    await limiter.release_connection(ticket)
    await limiter.close()


# --- floods against the web chat ---------------------------------------------------------------------

async def test_630_anonymous_handoffs_from_one_address_open_at_most_the_allowed_cases(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, make_client: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's flood: 630 new sessions each asking for a person (and leaving a mobile)."""
    runtime = await start(settings, nlu, knowledge)
    try:
        async with transaction(runtime.sessions) as session:
            await load_demo(session)  # commissioners to page
        client = await make_client(runtime)
        visitors = [await Visitor.arrive(client) for _ in range(630)]
        caplog.set_level(logging.WARNING, logger="bot.services.limits")
        started = time.monotonic()

        async def page_a_person(i: int, visitor: Visitor) -> list[str]:
            return [*await visitor.say(HANDOFF), *await visitor.say(f"138{i:08d}")]

        replies = await gather_bounded([page_a_person(i, v) for i, v in enumerate(visitors)])
        elapsed = time.monotonic() - started
        opened = await count(runtime, select(func.count(ServiceCase.id)))
        paged = await count(runtime, select(func.count(Outbox.id)).where(Outbox.kind == "live_requested"))
        refused = sum(any(LIMIT_TEXT in r for r in rs) for rs in replies)
        print(f"630 handoffs from one address in {elapsed:.1f}s: {opened} cases, {paged} pages, "
              f"{refused} visitors told to slow down")
        assert 0 < opened <= 10 and 0 < paged <= opened * 3  # openings per address: 10 an hour
        assert refused >= 400  # the rest got through the address's 40 messages per 10 s
        assert any("limit reached: messages_per_ip on webchat for 127.0.0.1" in r.message for r in caplog.records)
        # One log line per limit and key per minute, not one per refused message.
        assert sum("limit reached" in r.message for r in caplog.records) < 50
        await runtime.limits.flush()  # type: ignore[union-attr]
        stored = await count(runtime, select(func.sum(LimitRefusal.count)))
        assert stored >= refused
        shown = invoke(["limits"], runtime.settings.data_dir)  # what an operator reads, over all workers
        assert shown.returncode == 0 and "messages_per_ip" in shown.stdout and "webchat" in shown.stdout
    finally:
        await runtime.close()


async def test_openings_per_address_hold_when_the_message_rate_lets_everything_through(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, make_client: Any,
) -> None:
    runtime = await start(settings, nlu, knowledge, limit_messages_per_ip="")
    try:
        client = await make_client(runtime)
        visitors = [await Visitor.arrive(client) for _ in range(20)]  # twice the per-address quota
        replies = await gather_bounded(
            [v.say(HANDOFF) for v in visitors] + [v.say(f"139{i:08d}") for i, v in enumerate(visitors)], width=1)
        opened = await count(runtime, select(func.count(ServiceCase.id)))
        assert opened == 10
        assert sum(any("您所在的网络刚刚提交了较多的服务请求" in r for r in rs) for rs in replies) == 10
    finally:
        await runtime.close()


async def test_the_web_channel_ceiling_holds_against_many_addresses(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, make_client: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """Visitors each from its own address behind our proxy: the per-address limits never trip,
    the channel's hourly ceiling does (lowered to 10 here, to keep the test short), and staff see
    it in the log."""
    runtime = await start(settings, nlu, knowledge, trusted_proxies="127.0.0.1", limit_web_cases_per_hour=10)
    try:
        client = await make_client(runtime)
        visitors = [await Visitor.arrive(client, f"198.51.100.{i + 1}") for i in range(25)]
        started = time.monotonic()

        async def page_a_person(i: int, visitor: Visitor) -> list[str]:
            return [*await visitor.say(HANDOFF), *await visitor.say(f"137{i:08d}")]

        replies = await gather_bounded([page_a_person(i, v) for i, v in enumerate(visitors)])
        elapsed = time.monotonic() - started
        opened = await count(runtime, select(func.count(ServiceCase.id)))
        busy = sum(any("网页渠道现在登记的需求较多" in r for r in rs) for rs in replies)
        print(f"25 handoffs from 25 addresses in {elapsed:.1f}s: {opened} cases, {busy} told the channel is busy")
        assert opened == runtime.settings.limit_web_cases_per_hour
        assert busy == 25 - opened
        assert any("cases and complaints from the web chat in the last hour" in r.message for r in caplog.records)
    finally:
        await runtime.close()


async def test_1053_complaints_from_one_session_file_at_most_the_daily_quota(
    runtime: Runtime, make_client: Any,
) -> None:
    client = await make_client(runtime)
    visitor = await Visitor.arrive(client)
    await visitor.say("我要投诉，专员答应昨天回电话，到现在都没有人联系我们")
    assert "TS-" in (await visitor.say("13812345678"))[-1]
    started = time.monotonic()
    replies = await gather_bounded(
        [visitor.say(f"我要投诉，第{i}次投诉：专员一直没有回电话，服务太差了") for i in range(1052)], width=20)
    elapsed = time.monotonic() - started
    filed = await count(runtime, select(func.count(Complaint.id)))
    slowed = sum(any(LIMIT_TEXT in r for r in rs) for rs in replies)
    print(f"1053 complaints from one session in {elapsed:.1f}s: {filed} filed, {slowed} told to slow down")
    assert filed <= runtime.settings.limit_complaints_per_day
    assert slowed >= 1000


async def test_a_person_pasting_five_lines_is_never_slowed_down(runtime: Runtime, make_client: Any) -> None:
    client = await make_client(runtime)
    visitor = await Visitor.arrive(client)
    lines = ["你好", "我们是一家做电子秤的小公司", "电子秤要不要强制检定？", "检定周期多长？", "去哪里检定？"]
    over_http = await asyncio.gather(*(visitor.say(line) for line in lines))
    assert not any(LIMIT_TEXT in r for rs in over_http for r in rs)
    socket = await visitor.socket()
    for line in lines:
        await socket.send_json({"type": "message", "text": line})
    frames = [await socket.receive_json(timeout=10) for _ in lines]
    assert [f["type"] for f in frames] == ["replies"] * 5
    assert not any(LIMIT_TEXT in r["text"] for f in frames for r in f["replies"])
    await socket.close()


async def open_sockets(visitors: list[Visitor]) -> tuple[list[Any], list[Any]]:
    """Open one socket per visitor entry; return (kept open, closed by the server)."""
    open_, refused = [], []
    for visitor in visitors:
        socket = await visitor.socket()
        try:
            message = await socket.receive(timeout=0.2)
        except TimeoutError:
            open_.append(socket)
            continue
        assert message.type == WSMsgType.TEXT and "聊天窗口较多" in message.json()["error"]
        closing = await socket.receive(timeout=2)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        refused.append(socket)
    return open_, refused


async def test_websockets_per_address_and_per_session(runtime: Runtime, make_client: Any) -> None:
    client = await make_client(runtime)
    one = await Visitor.arrive(client)
    open_, refused = await open_sockets([one] * 8)  # eight tabs of one session
    assert (len(open_), len(refused)) == (runtime.settings.limit_ws_per_session, 3)
    assert refused[0].close_code == 1013  # try again later
    others = [await Visitor.arrive(client) for _ in range(40)]  # 40 sessions from the same address
    more_open, more_refused = await open_sockets(others)
    assert len(open_) + len(more_open) == runtime.settings.limit_ws_per_ip
    print(f"45 sessions opened 48 sockets from one address: {len(open_) + len(more_open)} kept, "
          f"{len(refused) + len(more_refused)} refused")
    for socket in open_ + more_open:
        await socket.close()
    await asyncio.sleep(0.1)
    again, none_refused = await open_sockets([others[-1]])  # closing frees the places
    assert len(again) == 1 and not none_refused
    await again[0].close()


# --- Redis: limits shared by two app instances ------------------------------------------------------

@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    """Settings pointing at the machine's Redis with a prefix of this test's own."""
    from redis.asyncio import Redis

    await require_redis()
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    prefix = f"qibot-test-{uuid.uuid4().hex[:10]}"
    yield dataclasses.replace(settings, redis_url=REDIS_URL, redis_prefix=prefix)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_redis_limits_hold_across_two_app_instances(
    redis_settings: Settings, nlu: Nlu, knowledge: KnowledgeService, make_client: Any,
) -> None:
    # A minute's window, so that slow turns on a busy machine cannot let the window slide.
    redis_settings = dataclasses.replace(redis_settings, limit_messages="12/minute")
    first = await start(redis_settings, nlu, knowledge)
    second = await start(redis_settings, nlu, knowledge)
    try:
        assert first.limits is not None and first.limits.backend == "redis"
        a, b = await make_client(first), await make_client(second)
        visitor = await Visitor.arrive(a)
        same_on_b = Visitor(b, visitor.token)
        # Messages alternate between the two workers: 12 a minute in all, not 12 each.
        replies = [await (visitor if i % 2 else same_on_b).say(f"第{i}个问题：电子秤要不要检定") for i in range(24)]
        passed = sum(not any(LIMIT_TEXT in r for r in rs) for rs in replies)
        assert passed == 12
        # Sockets of one session, spread over both workers: 5 in all.
        on_a, refused_a = await open_sockets([visitor] * 3)
        on_b, refused_b = await open_sockets([same_on_b] * 3)
        assert (len(on_a), len(on_b), len(refused_a) + len(refused_b)) == (3, 2, 1)
        for socket in on_a + on_b:
            await socket.close()
    finally:
        await first.close()
        await second.close()


async def test_without_redis_each_instance_counts_alone(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService, make_client: Any,
) -> None:
    """Why a deployment with several workers sets QIBOT_REDIS_URL (README, "Limits")."""
    settings = dataclasses.replace(settings, limit_messages="12/minute")
    first, second = await start(settings, nlu, knowledge), await start(settings, nlu, knowledge)
    try:
        a, b = await make_client(first), await make_client(second)
        visitor = await Visitor.arrive(a)
        same_on_b = Visitor(b, visitor.token)
        replies = [await (visitor if i % 2 else same_on_b).say(f"第{i}个问题：电子秤要不要检定") for i in range(24)]
        assert sum(not any(LIMIT_TEXT in r for r in rs) for rs in replies) == 24
    finally:
        await first.close()
        await second.close()
