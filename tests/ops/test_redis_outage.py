"""Redis goes away while the service runs (issue 16): rates are counted in the process instead
(``bot/services/limits.py``), the replay memory of signed callbacks falls back to the database
(``bot/channels/replay.py``); every message is answered, none is lost, no 5xx. When Redis is
back, the shared counters are used again without a restart.

Redis is reached through a TCP proxy the test cuts and restores (the machine's Redis keeps
serving other sessions).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from intents.classifier import Nlu
from tests.channels.wechat.wechat_helpers import TOKEN, WeChatServers, message_xml, signed, wechat_environ
from tests.helpers.fakes.wechat_server import FakeWeChat
from tests.helpers.proxy import TcpProxy
from tests.helpers.services import REDIS_URL, require_redis

LIMIT_TEXT = "您发送得有点快"


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    await require_redis()
    host, port = REDIS_URL.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def client(aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path, proxy: TcpProxy, nlu: Nlu,
                 knowledge: KnowledgeService) -> AsyncIterator[tuple[TestClient, Runtime, FakeWeChat]]:
    fake = FakeWeChat()
    server: TestServer = await aiohttp_server(fake.app())
    settings: Settings = load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_REDIS_URL": proxy.url_for(REDIS_URL),
        "QIBOT_REDIS_PREFIX": f"qibot-test-{uuid.uuid4().hex[:10]}",
        "QIBOT_LIMIT_MESSAGES": "6/minute",
        **wechat_environ(fake, str(server.make_url(""))),
        "QIBOT_WECHAT_MODE": "compatible",
    })
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    try:
        test_client: TestClient = await aiohttp_client(create_app(settings, runtime))
        assert (await test_client.get("/")).status == 200
        yield test_client, runtime, fake
    finally:
        await runtime.close()


async def say(client: TestClient, text: str, message_id: str) -> list[str]:
    response = await client.post("/api/chat/messages", json={"text": text, "id": message_id})
    assert response.status == 200, await response.text()  # never a 5xx
    return [r["text"] for r in (await response.json())["replies"]]


async def test_limits_count_in_memory_and_nothing_is_lost_while_redis_is_down(
    client: tuple[TestClient, Runtime, FakeWeChat], proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    web, runtime, _ = client
    assert runtime.limits is not None and runtime.limits.backend == "redis"
    assert LIMIT_TEXT not in " ".join(await say(web, "你好", "r0"))

    await proxy.cut()
    replies = [await say(web, f"第{i}个问题：电子秤要不要检定", f"r{i}") for i in range(1, 9)]
    answered = [r for r in replies if not any(LIMIT_TEXT in text for text in r)]
    # Still limited (6 a minute, counted in this process from the cut on), never unlimited.
    assert 5 <= len(answered) <= 6 and any(LIMIT_TEXT in " ".join(r) for r in replies)
    history = await (await web.get("/api/chat/history")).json()
    logged = [m["text"] for m in history["messages"] if m["direction"] == "in"]
    asked = [f"第{i}个问题：电子秤要不要检定" for i in range(1, len(answered) + 1)]
    assert logged[: len(answered) + 1] == ["你好", *asked]
    warned = [r.name for r in caplog.records if "Redis unavailable" in r.getMessage()]
    # one line for the outage from each part that uses Redis (limits; live events), not one per message
    assert warned and len(warned) == len(set(warned)), warned
    assert not [r for r in caplog.records if r.exc_info]

    await proxy.restore()
    assert await runtime.limits.ping()


async def test_signed_callbacks_are_remembered_in_the_database_while_redis_is_down(
    client: tuple[TestClient, Runtime, FakeWeChat], proxy: TcpProxy
) -> None:
    web, _, fake = client
    wechat = WeChatServers(web, fake.app_id, encrypted=False)  # compatible mode: plaintext accepted
    openid = wechat.user()
    await proxy.cut()
    answer = await wechat.say(openid, "CCC认证找谁办")
    assert answer is not None and "CCC" in answer
    # The same signed URL with another body: a replay, refused although Redis is down.
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    params = {"timestamp": ts, "nonce": nonce, "signature": signed(TOKEN, ts, nonce), "openid": "x"}
    first = message_xml(openid, "text", {"Content": "你好", "MsgId": wechat.next_id()})
    other = message_xml(openid, "text", {"Content": "转人工", "MsgId": wechat.next_id()})
    a = await web.post("/wechat", params=params, data=first.encode(), headers={"Content-Type": "text/xml"})
    retry = await web.post("/wechat", params=params, data=first.encode(), headers={"Content-Type": "text/xml"})
    b = await web.post("/wechat", params=params, data=other.encode(), headers={"Content-Type": "text/xml"})
    assert (a.status, retry.status, b.status) == (200, 200, 409)
    assert await retry.text() != "success"  # WeChat's retry of the same body is answered
    await proxy.restore()
