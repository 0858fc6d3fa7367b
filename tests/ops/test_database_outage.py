"""PostgreSQL goes away and comes back while the service runs (issue 16, failure behaviour).

The app talks to the machine's PostgreSQL through a TCP proxy the test cuts and restores
(:mod:`tests.helpers.proxy`), so the shared server keeps running. While it is cut: ``/readyz``
says 503, the web chat answers the polite "busy" text (HTTP 503 for a POST, an error frame on an
open WebSocket, which stays open), WeChat gets no answer at all (so it retries), and the log
gets one warning for the outage, not a traceback per request. Restored: the same requests work,
without restarting anything, and a message sent during the outage can be sent again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from intents.classifier import Nlu
from tests.channels.wechat.wechat_helpers import WeChatServers, message_xml, wechat_environ
from tests.helpers.fakes.wechat_server import FakeWeChat
from tests.helpers.proxy import TcpProxy

BUSY = "系统繁忙，请稍后再试"


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def fake_server(aiohttp_server: Any) -> tuple[FakeWeChat, TestServer]:
    fake = FakeWeChat()
    return fake, await aiohttp_server(fake.app())


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_url: str, proxy: TcpProxy,
                fake_server: tuple[FakeWeChat, TestServer]) -> Settings:
    fake, server = fake_server
    return load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_DATABASE_URL": proxy.url_for(postgres_url),
        **wechat_environ(fake, str(server.make_url(""))),
    })


@pytest.fixture
async def pg_runtime(pg_settings: Settings, nlu: Nlu, knowledge: KnowledgeService) -> AsyncIterator[Runtime]:
    runtime = await Runtime.start(pg_settings, nlu=nlu, knowledge=knowledge)
    yield runtime
    await runtime.close()


@pytest.fixture
async def client(aiohttp_client: Any, pg_runtime: Runtime) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(pg_runtime.settings, pg_runtime))
    assert (await client.get("/")).status == 200  # a session cookie
    return client


def outage_log(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[logging.LogRecord]]:
    """The outage warnings, and every record that carries a traceback."""
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.storage.outage"]
    return warnings, [r for r in caplog.records if r.exc_info or r.exc_text]


async def test_web_chat_post_and_readiness_through_an_outage(
    client: TestClient, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ok = await client.post("/api/chat/messages", json={"text": "你好", "id": "before"})
    assert ok.status == 200 and (await client.get("/readyz")).status == 200

    await proxy.cut()
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["database"] == "unreachable"
    assert (await client.get("/healthz")).status == 200  # the process is alive: no restart wanted
    for _ in range(3):
        refused = await client.post("/api/chat/messages", json={"text": "CCC认证找谁办", "id": "during"})
        assert refused.status == 503
        assert (await refused.json())["error"] == BUSY
        assert refused.headers["Retry-After"]
    assert (await client.get("/api/chat/history")).status == 503
    warnings, tracebacks = outage_log(caplog)
    assert warnings == [w for w in warnings if w.startswith("database unavailable")] and len(warnings) == 1
    assert tracebacks == []

    await proxy.restore()
    assert (await client.get("/readyz")).status == 200
    again = await client.post("/api/chat/messages", json={"text": "CCC认证找谁办", "id": "during"})
    assert again.status == 200
    body = await again.json()
    assert body["duplicate"] is False and "CCC" in body["replies"][0]["text"]  # nothing half-stored
    history = await (await client.get("/api/chat/history")).json()
    assert [m["text"] for m in history["messages"] if m["direction"] == "in"] == ["你好", "CCC认证找谁办"]
    warnings, tracebacks = outage_log(caplog)
    assert warnings[-1] == "database reachable again" and len(warnings) == 2 and tracebacks == []


async def test_an_open_websocket_gets_an_error_frame_and_stays_usable(
    client: TestClient, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await client.ws_connect("/api/chat/ws")
    await ws.send_json({"type": "message", "text": "你好", "id": "w1"})
    assert (await ws.receive_json(timeout=10))["type"] == "replies"

    await proxy.cut()
    await ws.send_json({"type": "message", "text": "CCC认证找谁办", "id": "w2"})
    frame = await ws.receive(timeout=10)
    assert frame.type == WSMsgType.TEXT  # a JSON frame, not a broken stream
    assert frame.json() == {"type": "error", "in_reply_to": "w2", "busy": True, "error": BUSY}
    assert outage_log(caplog)[1] == []

    await proxy.restore()
    await ws.send_json({"type": "message", "text": "CCC认证找谁办", "id": "w2"})
    answer = await ws.receive_json(timeout=10)
    assert answer["type"] == "replies" and answer["in_reply_to"] == "w2" and not answer["duplicate"]
    await ws.close()


async def test_a_websocket_opened_during_the_outage_answers_busy(client: TestClient, proxy: TcpProxy) -> None:
    """Opening the socket needs no database; its first message gets the busy frame."""
    await proxy.cut()
    ws = await client.ws_connect("/api/chat/ws")
    await ws.send_json({"type": "message", "text": "你好", "id": "x"})
    frame = await ws.receive_json(timeout=10)
    assert frame["error"] == BUSY
    await ws.close()
    await proxy.restore()


async def test_wechat_gets_no_answer_during_the_outage_and_its_retry_is_answered(
    client: TestClient, proxy: TcpProxy, fake_server: tuple[FakeWeChat, TestServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, _ = fake_server
    wechat = WeChatServers(client, fake.app_id)
    openid = wechat.user()
    assert await wechat.say(openid, "你好")

    await proxy.cut()
    inner = message_xml(openid, "text", {"Content": "CCC认证找谁办", "MsgId": wechat.next_id()})
    with pytest.raises(aiohttp.ClientError):  # the connection closes without a response: WeChat retries
        response = await wechat.post(inner)
        await response.read()
    assert outage_log(caplog)[1] == []

    await proxy.restore()
    response = await wechat.post(inner)  # WeChat's retry of the same message
    assert response.status == 200
    reply = wechat.read(await response.text())
    assert reply is not None and "CCC" in reply["Content"]


async def test_the_outbox_loop_logs_one_line_per_outage_and_resumes(
    pg_runtime: Runtime, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """The background loop meets the outage too: it must not write a traceback every second."""
    import asyncio

    from bot.storage.outage import OUTAGE

    caplog.set_level(logging.INFO)
    await proxy.cut()
    loop = asyncio.create_task(pg_runtime.dispatcher.run_forever(interval=0.01))
    try:
        for _ in range(500):
            if OUTAGE.down:
                break
            await asyncio.sleep(0.01)
        assert OUTAGE.down
        await asyncio.sleep(0.3)  # some thirty more rounds against the cut database
        warnings, tracebacks = outage_log(caplog)
        assert len(warnings) == 1 and tracebacks == []
        await proxy.restore()
        for _ in range(500):
            if not OUTAGE.down:
                break
            await asyncio.sleep(0.01)
        assert not OUTAGE.down and outage_log(caplog)[0][-1] == "database reachable again"
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
