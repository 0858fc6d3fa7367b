"""The web chat channel over real HTTP and WebSocket, against the real aiohttp app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels.webchat import COOKIE
from bot.runtime import Runtime


@pytest.fixture
async def client(aiohttp_client, runtime: Runtime) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(runtime.settings, runtime))


async def open_session(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert COOKIE in response.cookies


async def test_the_page_is_served_with_a_session_cookie(client: TestClient) -> None:
    response = await client.get("/")
    body = await response.text()
    assert "<textarea" in body and "/static/chat.js" in body
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    script = await client.get("/static/chat.js")
    assert script.status == 200 and "WebSocket" in await script.text()


async def test_post_a_message_and_get_the_reply(client: TestClient) -> None:
    await open_session(client)
    response = await client.post("/api/chat/messages", json={"text": "你好", "id": "c-1"})
    assert response.status == 200
    body = await response.json()
    assert body["in_reply_to"] == "c-1"
    assert "质量基础设施" in body["replies"][0]["text"]
    assert body["replies"][0]["choices"]


async def test_a_retried_post_is_answered_once(client: TestClient, runtime: Runtime) -> None:
    await open_session(client)
    first = await (await client.post("/api/chat/messages", json={"text": "CCC认证找谁办", "id": "same"})).json()
    again = await (await client.post("/api/chat/messages", json={"text": "CCC认证找谁办", "id": "same"})).json()
    assert any(r["choices"] for r in first["replies"])
    assert again["duplicate"] is True and again["replies"] == first["replies"]  # choices included


async def test_history_shows_the_conversation_after_a_reload(client: TestClient) -> None:
    await open_session(client)
    await client.post("/api/chat/messages", json={"text": "你好"})
    history = await (await client.get("/api/chat/history")).json()
    assert [m["direction"] for m in history["messages"]] == ["in", "out"]
    assert history["messages"][0]["text"] == "你好"


async def test_visitors_do_not_see_each_other(client: TestClient, aiohttp_client, runtime: Runtime) -> None:
    await open_session(client)
    await client.post("/api/chat/messages", json={"text": "我的手机是13812345678"})
    stranger = await aiohttp_client(create_app(runtime.settings, runtime))
    await stranger.get("/")
    history = await (await stranger.get("/api/chat/history")).json()
    assert history["messages"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"\xff\xfe\xfa not utf-8", "application/json", 400, "UTF-8"),
        (b"{not json", "application/json", 400, "invalid message"),
        (b'{"text": 42}', "application/json", 400, "text"),
        (b'["text"]', "application/json", 400, "object"),
        (b'{"text": "hi", "id": ""}', "application/json", 400, "id"),
    ],
)
async def test_bad_requests_get_a_clear_4xx(
    client: TestClient, body: bytes, content_type: str, status: int, error: str
) -> None:
    await open_session(client)
    response = await client.post("/api/chat/messages", data=body, headers={"Content-Type": content_type})
    assert response.status == status
    assert error in (await response.json())["error"]


async def test_an_oversized_body_gets_413(client: TestClient, runtime: Runtime) -> None:
    await open_session(client)
    too_big = b'{"text": "' + b"a" * (runtime.settings.max_body_bytes + 10) + b'"}'
    response = await client.post("/api/chat/messages", data=too_big, headers={"Content-Type": "application/json"})
    assert response.status == 413


async def test_websocket_conversation_and_bad_frames(client: TestClient) -> None:
    await open_session(client)
    async with client.ws_connect("/api/chat/ws") as ws:
        await ws.send_json({"type": "message", "id": "w-1", "text": "你好"})
        frame = await ws.receive_json(timeout=10)
        assert frame["type"] == "replies" and frame["in_reply_to"] == "w-1"
        assert "质量基础设施" in frame["replies"][0]["text"]

        await ws.send_json({"type": "typing"})
        assert (await ws.receive_json(timeout=5)) == {"type": "error", "error": "unknown frame type 'typing'"}
        await ws.send_str("{broken")
        assert (await ws.receive_json(timeout=5))["type"] == "error"
        await ws.send_bytes(b"\x00\x01")
        assert "binary" in (await ws.receive_json(timeout=5))["error"]

        await ws.send_json({"type": "message", "text": "谢谢"})  # still alive after the bad frames
        frame = await ws.receive_json(timeout=10)
        assert frame["type"] == "replies" and frame["replies"]
        await ws.close()
    assert ws.closed and ws.close_code is not None and ws.close_code != WSMsgType.ERROR


async def test_websocket_needs_a_session(client: TestClient) -> None:
    response = await client.get("/api/chat/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert response.status == 401


async def test_health_and_readiness(client: TestClient) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["database"] == "ok" and body["knowledge_entries"] >= 1


async def test_readiness_reports_a_database_that_is_gone(client: TestClient, runtime: Runtime) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    healthy = runtime.engine
    runtime.engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")  # nothing listens
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["database"] == "unreachable"
        assert (await client.get("/healthz")).status == 200  # the process itself is fine
    finally:
        await runtime.engine.dispose()
        runtime.engine = healthy
