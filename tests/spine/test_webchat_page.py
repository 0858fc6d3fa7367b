"""What the web chat page is given to show: the welcome (never a message the visitor did not
send), its settings, labelled tap-choices, the kind of each notice, the live handoff state; and
the sockets closed on shutdown so a restart does not wait for open pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.channels.webchat import choice_labels
from bot.runtime import Runtime
from bot.services import cases, live
from bot.services.demo import load_demo
from bot.services.enterprises import enterprise_for
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Commissioner, MessageLog

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Xiamen: people on duty


@pytest.fixture
async def client(aiohttp_client, runtime: Runtime) -> AsyncIterator[TestClient]:
    runtime.dialogue.clock = lambda: NOW
    runtime.dispatcher.clock = lambda: NOW
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    yield await aiohttp_client(create_app(runtime.settings, runtime))


async def visitor(runtime: Runtime) -> ChannelIdentity:
    async with transaction(runtime.sessions) as session:
        return (await session.execute(select(ChannelIdentity).where(ChannelIdentity.channel == "webchat"))
                ).scalar_one()


async def open_case(runtime: Runtime) -> str:
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity).where(ChannelIdentity.channel == "webchat"))
                    ).scalar_one()
        enterprise = await enterprise_for(session, identity)
        case = await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                                     description="加油机需要校准", mode="online", district="湖里区", now=NOW)
        return case.number


async def staff(runtime: Runtime, action: str, number: str, text: str = "") -> None:
    async with transaction(runtime.sessions) as session:
        case = await cases.require_case(session, number)
        wang = (await session.execute(select(Commissioner).where(Commissioner.handle == "wang"))).scalar_one()
        if action == "accept":
            await cases.accept(session, case, wang, NOW)
        elif action == "reply":
            await cases.reply(session, case, wang, text, NOW)
        else:
            await cases.resolve(session, case, wang, text, NOW)


def test_choice_labels_say_what_each_choice_chooses() -> None:
    domains = "请问需要哪方面的服务？回复序号即可：\n1. 计量\n2. 标准化\n3. 检验检测\n"
    assert choice_labels(domains, ("1", "2", "3")) == ["计量", "标准化", "检验检测"]
    assert choice_labels("希望以什么方式服务？回复“1”线上服务，或“2”上门服务。", ("1", "2")) == ["线上服务", "上门服务"]
    assert choice_labels("回覆「1」線上服務，或「2」上門服務。", ("1", "2")) == ["線上服務", "上門服務"]
    assert choice_labels("请打分：回复 1～5 分", ("5", "4", "3", "2", "1")) == [
        "非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    assert choice_labels("請打分", ("5", "4", "3", "2", "1"), "hant")[0] == "非常滿意"
    assert choice_labels("", ("5分 非常满意", "1分 非常不满意")) == ["非常满意", "非常不满意"]
    assert choice_labels("无误请回复“确认”", ("确认", "取消")) == ["确认", "取消"]
    assert choice_labels("没有这一行", ("4",)) == ["4"]  # nothing to say: the number itself
    long = choice_labels("1. " + "很长的标题" * 10, ("1",))[0]
    assert len(long) <= 24 and long.endswith("…")
    assert choice_labels("10. 十\n1. 一", ("1",)) == ["一"]  # 1 is not the start of 10


async def test_the_welcome_comes_with_the_history_and_is_not_logged(client: TestClient, runtime: Runtime) -> None:
    await client.get("/")
    body = await (await client.get("/api/chat/history")).json()
    assert "质量基础设施" in body["welcome"]["text"]
    assert body["welcome"]["choices"] == ["我要办理", "我的需求进度", "转人工"]
    assert body["messages"] == [] and body["live"] is None
    assert body["settings"] == {
        "max_chars": runtime.settings.max_message_chars, "operator_name": runtime.settings.operator_name,
        "operator_contact": "", "privacy_url": "/static/privacy.html",
    }
    assert body["settings"]["max_chars"] == 2000
    async with transaction(runtime.sessions) as session:
        assert await session.scalar(select(func.count()).select_from(MessageLog)) == 0  # nothing said for the visitor
    privacy = await client.get("/static/privacy.html")
    assert privacy.status == 200 and "个人信息" in await privacy.text()
    icon = await client.get("/static/favicon.svg")
    assert icon.status == 200 and icon.content_type == "image/svg+xml"


async def test_replies_carry_labelled_choices_also_in_the_history(client: TestClient) -> None:
    await client.get("/")
    body = await (await client.post("/api/chat/messages", json={"text": "我要办理", "id": "m-1"})).json()
    last = body["replies"][-1]
    assert last["choices"] == ["1", "2", "3", "4", "5", "6", "7"]
    assert last["labels"][0] == "计量" and len(set(last["labels"])) == 7
    assert last["kind"] == "bot" and body["live"] is None
    history = await (await client.get("/api/chat/history")).json()
    logged = history["messages"][-1]
    assert logged["choices"] == last["choices"] and logged["labels"] == last["labels"]
    assert history["messages"][0]["kind"] == "user"


async def test_notices_keep_their_kind_pushed_and_in_the_history(client: TestClient, runtime: Runtime) -> None:
    await client.get("/")
    await client.post("/api/chat/messages", json={"text": "你好"})
    number = await open_case(runtime)
    async with client.ws_connect("/api/chat/ws") as ws:
        await staff(runtime, "accept", number)
        await staff(runtime, "reply", number, "明天上午上门")
        await staff(runtime, "resolve", number, "证书已出具")
        await runtime.dispatcher.run_once()
        frames = [await ws.receive_json(timeout=5) for _ in range(3)]
    assert [(f["event"], f["replies"][0]["kind"]) for f in frames] == [
        ("enterprise_accepted", "status"), ("enterprise_reply", "person"), ("enterprise_resolved", "rating")]
    rating = frames[2]["replies"][0]
    assert len(rating["choices"]) == 5 and "非常满意" in rating["labels"][0] and "非常不满意" in rating["labels"][4]

    history = await (await client.get("/api/chat/history")).json()
    kinds = [m["kind"] for m in history["messages"]]
    assert kinds[-3:] == ["status", "person", "rating"]
    assert history["messages"][-1]["labels"] == rating["labels"]  # the buttons survive a reload


async def test_a_held_notice_shown_in_the_history_is_not_handed_again(client: TestClient, runtime: Runtime) -> None:
    await client.get("/")
    await client.post("/api/chat/messages", json={"text": "你好"})
    number = await open_case(runtime)
    await staff(runtime, "accept", number)
    await runtime.dispatcher.run_once()  # no page open: held
    history = await (await client.get("/api/chat/history")).json()
    assert any("受理" in m["text"] for m in history["messages"])
    body = await (await client.post("/api/chat/messages", json={"text": "谢谢"})).json()
    assert not any("受理" in r["text"] for r in body["replies"])  # already on the page


async def test_turns_and_history_tell_the_page_about_a_live_handoff(client: TestClient, runtime: Runtime) -> None:
    await client.get("/")
    await client.post("/api/chat/messages", json={"text": "你好"})
    await open_case(runtime)
    async with transaction(runtime.sessions) as session:
        identity = await session.get(ChannelIdentity, (await visitor(runtime)).id)
        assert identity is not None
        enterprise = await enterprise_for(session, identity)
        started = await live.start(session, identity=identity, enterprise=enterprise, domain="metrology",
                                   description="转人工", now=NOW, calendar=runtime.policy.calendar)
        from bot.services.conversations import DialogueState, save

        state = DialogueState()
        state.enter(live.LIVE_FLOW, session_id=started.session_id, case=started.case.number)
        await save(session, identity.id, state, NOW)
    body = await (await client.post("/api/chat/messages", json={"text": "请问什么时候上门"})).json()
    assert body["live"] == {"with": "王专员", "case": started.case.number, "connected": True}
    history = await (await client.get("/api/chat/history")).json()
    assert history["live"]["with"] == "王专员"
    body = await (await client.post("/api/chat/messages", json={"text": "结束人工"})).json()
    assert body["live"] is None


async def test_open_pages_are_closed_at_shutdown(aiohttp_client, runtime: Runtime) -> None:
    client = await aiohttp_client(create_app(runtime.settings, runtime))
    await client.get("/")
    ws = await client.ws_connect("/api/chat/ws")
    await client.server.close()  # what a restart does: on_shutdown closes the sockets at once
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.CLOSE and message.data == WSCloseCode.GOING_AWAY  # 1001, not a dropped line
