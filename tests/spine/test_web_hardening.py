"""Web session hardening and no 5xx from input (issue 13, points 4 and 5), over real HTTP and
WebSocket against the real app, on SQLite and PostgreSQL.

Before: any 32–64 character token a client chose was a session id (session fixation); a page of
another origin could drive the WebSocket with the visitor's cookie; no CSP, nosniff or framing
rules; a lone surrogate (both databases), NUL (PostgreSQL), ``[[[[…]]]]`` (RecursionError) or a
5,000-character static file name answered 500; and an error on a WebSocket wrote an HTTP 500
into the upgraded stream.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app, error_middleware
from bot.channels import edge
from bot.channels.webchat import COOKIE, STATIC_DIR, user_id_for
from bot.config import Settings, load_settings
from bot.runtime import Runtime
from bot.services import identities
from bot.storage.db import transaction

CHOSEN = "A" * 43  # a well-formed id the client made up


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    environ = {"QIBOT_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgresql":
        environ["QIBOT_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return load_settings(environ=environ)


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Runtime) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(runtime.settings, runtime))


async def open_session(client: TestClient) -> str:
    response = await client.get("/")
    assert response.status == 200
    return response.cookies[COOKIE].value


def cookie_of(client: TestClient) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    return None


async def identity_exists(runtime: Runtime, token: str) -> bool:
    async with transaction(runtime.sessions) as session:
        return await identities.find(session, "webchat", user_id_for(token)) is not None


async def history_texts(client: TestClient, token: str) -> list[str]:
    response = await client.get("/api/chat/history", cookies={COOKIE: token})
    return [m["text"] for m in (await response.json())["messages"]]


# --------------------------------------------------------------------------- session ids


async def test_a_client_chosen_session_id_is_replaced(client: TestClient, runtime: Runtime) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: CHOSEN})
    page = await client.get("/")
    assert COOKIE in page.cookies and page.cookies[COOKIE].value != CHOSEN

    client.session.cookie_jar.clear()
    response = await client.post("/api/chat/messages", json={"text": "你好"}, cookies={COOKIE: CHOSEN})
    assert response.status == 200
    issued = response.cookies[COOKIE].value
    assert issued != CHOSEN
    assert not await identity_exists(runtime, CHOSEN)  # the conversation is not under the planted id
    assert await identity_exists(runtime, issued)


async def test_a_websocket_needs_a_session_the_server_issued(client: TestClient) -> None:
    response = await client.get("/api/chat/ws", cookies={COOKIE: CHOSEN},
                                headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert response.status == 401


async def test_giving_a_mobile_over_http_rotates_the_session(client: TestClient, runtime: Runtime) -> None:
    first = await open_session(client)
    await client.post("/api/chat/messages", json={"text": "你好"})
    assert cookie_of(client) == first
    response = await client.post("/api/chat/messages", json={"text": "我的手机是１３８ １２３４ ５６７８"})
    assert response.status == 200
    rotated = response.cookies[COOKIE].value
    assert rotated != first and cookie_of(client) == rotated
    assert "你好" in await history_texts(client, rotated)
    assert await history_texts(client, first) == []  # whoever knew the old id sees nothing


async def test_giving_a_credit_code_over_a_websocket_rotates_the_session(client: TestClient) -> None:
    first = await open_session(client)
    async with client.ws_connect("/api/chat/ws") as ws:
        await ws.send_json({"type": "message", "id": "m-1", "text": "我们的信用代码是91350200MA2Y3B4C5L"})
        frames = [await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)]
        assert [f["type"] for f in frames] == ["replies", "session"]
        ticket = frames[1]["ticket"]

        stranger = await client.post("/api/chat/session", json={"ticket": ticket}, cookies={COOKIE: CHOSEN})
        assert stranger.status == 403  # only the old session's holder can take the new one
        taken = await client.post("/api/chat/session", json={"ticket": ticket})
        assert taken.status == 200
        rotated = taken.cookies[COOKIE].value
        assert rotated != first

        await ws.send_json({"type": "message", "id": "m-2", "text": "谢谢"})  # the socket follows
        assert (await ws.receive_json(timeout=10))["type"] == "replies"
    texts = await history_texts(client, rotated)
    assert texts[0].startswith("我们的信用代码") and "谢谢" in texts
    assert await history_texts(client, first) == []


async def test_a_tampered_or_expired_ticket_is_refused(client: TestClient, runtime: Runtime) -> None:
    from bot.channels.webchat import SESSION_IDS

    token = await open_session(client)
    ids = client.app[SESSION_IDS]
    fresh = ids.issue()
    expired = ids.ticket(user_id_for(token), fresh, now=0)
    assert (await client.post("/api/chat/session", json={"ticket": expired})).status == 403
    forged = ids.ticket(user_id_for(token), fresh)[:-3] + "abc"
    assert (await client.post("/api/chat/session", json={"ticket": forged})).status == 403
    assert (await client.post("/api/chat/session", data=b"[[[")).status == 400


# --------------------------------------------------------------------------- origins


async def test_a_websocket_from_another_origin_is_refused(client: TestClient) -> None:
    await open_session(client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/chat/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    for other in ("null", f"http://{client.host}.evil.example:{client.port}"):
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await client.ws_connect("/api/chat/ws", headers={"Origin": other})
    async with client.ws_connect("/api/chat/ws", headers={"Origin": f"http://{client.host}:{client.port}"}) as ws:
        await ws.send_json({"type": "message", "text": "你好"})
        assert (await ws.receive_json(timeout=10))["type"] == "replies"


async def test_a_post_from_another_origin_is_refused(client: TestClient, runtime: Runtime) -> None:
    token = await open_session(client)
    response = await client.post("/api/chat/messages", json={"text": "我要投诉"},
                                 headers={"Origin": "https://evil.example"})
    assert response.status == 403
    assert await history_texts(client, token) == []
    same = await client.post("/api/chat/messages", json={"text": "你好"},
                             headers={"Origin": f"http://{client.host}:{client.port}"})
    assert same.status == 200


async def test_the_public_url_is_the_origin_when_set(aiohttp_client: Any, runtime: Runtime) -> None:
    import dataclasses

    settings = dataclasses.replace(runtime.settings, public_url="https://qi.example.cn/")
    client = await aiohttp_client(create_app(settings, runtime))
    await open_session(client)
    ok = await client.post("/api/chat/messages", json={"text": "你好"}, headers={"Origin": "https://qi.example.cn"})
    assert ok.status == 200
    local = await client.post("/api/chat/messages", json={"text": "你好"},
                              headers={"Origin": f"http://{client.host}:{client.port}"})
    assert local.status == 403


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/", "/static/chat.js", "/api/chat/history", "/healthz", "/no-such-page",
                                  "/static/" + "x" * 5000])
async def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = await client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_pages_have_no_inline_script() -> None:
    for page in STATIC_DIR.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I):
            assert "src=" in attrs and not body.strip(), page.name
        assert not re.search(r"\son[a-z]+\s*=", html, re.I), page.name  # no onclick= handlers
        assert not re.search(r"javascript:", html, re.I), page.name


# --------------------------------------------------------------------------- no 5xx from input


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "NUL\x00inside", "\x00"])
async def test_unstorable_characters_are_replaced_on_http(client: TestClient, text: str) -> None:
    token = await open_session(client)
    response = await client.post("/api/chat/messages", data=_json_with(text),
                                 headers={"Content-Type": "application/json"})
    assert response.status == 200
    assert any("\ufffd" in t for t in await history_texts(client, token))


@pytest.mark.parametrize("text", ["a\ud800b", "NUL\x00inside"])
async def test_unstorable_characters_are_replaced_on_the_websocket(client: TestClient, text: str) -> None:
    await open_session(client)
    async with client.ws_connect("/api/chat/ws") as ws:
        await ws.send_str(_json_with(text, frame=True).decode())
        assert (await ws.receive_json(timeout=10))["type"] == "replies"


def _json_with(text: str, frame: bool = False) -> bytes:
    """JSON whose string holds ``text`` as escapes, the way a hostile client writes it."""
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    head = '{"type": "message", ' if frame else "{"
    return (head + '"text": "' + escaped + '", "id": "x\\u0000\\ud800"}').encode("utf-8", "surrogatepass")


async def test_deeply_nested_json_is_a_400_and_an_error_frame(client: TestClient) -> None:
    await open_session(client)
    deep = "[" * 20000 + "]" * 20000
    response = await client.post("/api/chat/messages", data=deep, headers={"Content-Type": "application/json"})
    assert response.status == 400
    async with client.ws_connect("/api/chat/ws") as ws:
        await ws.send_str('{"type": "message", "text": ' + "[" * 5000 + "]" * 5000 + "}")
        assert (await ws.receive_json(timeout=10))["type"] == "error"
        await ws.send_json({"type": "message", "text": "你好"})
        assert (await ws.receive_json(timeout=10))["type"] == "replies"


@pytest.mark.parametrize("name", ["x" * 5000, "a/" * 1500, "%ff" * 300, "..%2f" * 60 + "etc/passwd"])
async def test_odd_static_names_are_not_found(client: TestClient, name: str) -> None:
    response = await client.get("/static/" + name)
    assert response.status in (400, 403, 404)


async def test_a_failed_turn_on_a_websocket_is_an_error_frame(client: TestClient, runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    await open_session(client)
    real = runtime.dialogue.handle

    async def broken(message: Any) -> Any:
        if message.text == "boom":
            raise RuntimeError("database went away")
        return await real(message)

    monkeypatch.setattr(runtime.dialogue, "handle", broken)
    async with client.ws_connect("/api/chat/ws") as ws:
        await ws.send_json({"type": "message", "id": "b-1", "text": "boom"})
        frame = await ws.receive_json(timeout=10)
        assert frame["type"] == "error" and frame["in_reply_to"] == "b-1" and "抱歉" in frame["error"]
        await ws.send_json({"type": "message", "text": "你好"})
        assert (await ws.receive_json(timeout=10))["type"] == "replies"  # the socket survived


async def test_the_error_middleware_never_writes_http_into_an_upgraded_stream(aiohttp_client: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        edge.mark_upgraded(request, ws)
        await ws.receive()
        raise RuntimeError("late failure")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("hi")
        message = await ws.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE and message.data == aiohttp.WSCloseCode.INTERNAL_ERROR


async def test_oversized_headers_are_one_log_line(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    server = TestServer(create_app(runtime.settings, runtime))
    await server.start_server()
    try:
        with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            await asyncio.sleep(0.1)
    finally:
        await server.close()
    assert status.startswith(b"HTTP/1.") and b" 400 " in status
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 1 and records[0].exc_info is None and records[0].levelno == logging.WARNING
    line = records[0].getMessage()
    assert "bad HTTP request" in line and "\n" not in line and "aaaa" not in line  # no header content
