"""Graceful shutdown of a server (issue 16): when it stops, a WebSocket turn in flight still gets
its answer before the page is told to reconnect elsewhere (1001), and a message arriving after
the stop began is left for the next worker (the page re-sends it with the same id)."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.runtime import Runtime
from handlers.base import Match, Outcome, TurnContext
from tests.channels.wechat.wechat_helpers import EchoHandler, put_first


class Slow(EchoHandler):
    """Says when its turn has started, and answers only when the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.go_on = asyncio.Event(), asyncio.Event()

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        self.started.set()
        await self.go_on.wait()
        return await super().handle(ctx, match)


async def test_a_turn_in_flight_answers_before_the_socket_closes(runtime: Runtime) -> None:
    slow = Slow()
    put_first(runtime, slow)
    client = TestClient(TestServer(create_app(runtime.settings, runtime)))
    await client.start_server()
    await client.get("/")
    ws = await client.ws_connect("/api/chat/ws")
    await ws.send_json({"type": "message", "id": "m-1", "text": "慢一点的问题"})
    await asyncio.wait_for(slow.started.wait(), 10)
    stopping = asyncio.create_task(client.server.close())  # SIGTERM's path: stop, shut down, clean up
    await asyncio.sleep(0)
    slow.go_on.set()
    frame = await ws.receive(timeout=10)
    assert frame.type == WSMsgType.TEXT
    answer = frame.json()
    assert answer["type"] == "replies" and answer["in_reply_to"] == "m-1"
    assert [r["text"] for r in answer["replies"]] == ["echo: 慢一点的问题"]
    closing = await ws.receive(timeout=10)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
    assert ws.close_code == 1001 or closing.data == 1001
    await stopping
    await client.close()
