"""A commissioner's reply reaches the visitor's open web chat page at once, and a visitor with no
page open gets it with the next answer (and in the history)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.runtime import Runtime
from bot.services import cases
from bot.services.enterprises import enterprise_for
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Commissioner
from tests.helpers.clock import Clock


async def open_case_for_visitor(client: TestClient, runtime: Runtime, clock: Clock) -> str:
    await client.get("/")
    await client.post("/api/chat/messages", json={"text": "你好"})
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity).where(ChannelIdentity.channel == "webchat"))
                    ).scalar_one()


        enterprise = await enterprise_for(session, identity)
        case = await cases.open_case(session, enterprise=enterprise, identity=identity, domain="testing",
                                     description="玩具出口检测", mode="online", district="湖里区", now=clock())
        return case.number


async def commissioner_replies(runtime: Runtime, number: str, text: str, clock: Clock) -> None:
    async with transaction(runtime.sessions) as session:
        case = await cases.require_case(session, number)
        actor = (await session.execute(select(Commissioner).where(Commissioner.handle == "li"))).scalar_one()
        await cases.reply(session, case, actor, text, clock())


async def test_a_reply_is_pushed_to_the_open_page(aiohttp_client, flow_runtime: Runtime, clock: Clock) -> None:
    client = await aiohttp_client(create_app(flow_runtime.settings, flow_runtime))
    number = await open_case_for_visitor(client, flow_runtime, clock)
    async with client.ws_connect("/api/chat/ws") as ws:
        await commissioner_replies(flow_runtime, number, "样品请周三前送到", clock)
        stats = await flow_runtime.dispatcher.run_once()
        assert stats.sent >= 2  # the enterprise's web chat and the commissioner's console
        frames = [await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)]
    texts = [frame["replies"][0]["text"] for frame in frames]
    assert all(frame["type"] == "push" for frame in frames)
    assert any("已由李专员受理" in t for t in texts)
    assert any("样品请周三前送到" in t for t in texts)


async def test_without_an_open_page_the_reply_waits_for_the_next_message(
    aiohttp_client, flow_runtime: Runtime, clock: Clock
) -> None:
    client = await aiohttp_client(create_app(flow_runtime.settings, flow_runtime))
    number = await open_case_for_visitor(client, flow_runtime, clock)
    await commissioner_replies(flow_runtime, number, "报告已出具", clock)
    stats = await flow_runtime.dispatcher.run_once()
    assert stats.held == 2
    body = await (await client.post("/api/chat/messages", json={"text": "谢谢"})).json()
    texts = [r["text"] for r in body["replies"]]
    assert any("报告已出具" in t for t in texts)
    # the answer to the new message comes after the held ones; a thank-you right after the
    # commissioner's message is for the commissioner, so the answer says it was passed on
    assert "已转给李专员" in texts[-1]
    history = await (await client.get("/api/chat/history")).json()
    assert sum("报告已出具" in m["text"] for m in history["messages"]) == 1  # logged once
