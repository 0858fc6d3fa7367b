"""Commands typed in the WeCom app, end to end: encrypted and signed by wechatpy, through the
real callback route, answered with an encrypted passive reply."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.services import linking
from bot.storage.db import transaction
from bot.storage.models import CaseEvent, Outbox
from tests.channels.wecom.wecom_helpers import MOBILE, WeComMember, add_commissioner, commissioner, load_case, new_case


async def rows_of(runtime: Runtime, kind: str) -> list[Outbox]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(Outbox).where(Outbox.kind == kind))).scalars())


async def test_accept_reply_resolve_and_my_cases(runtime: Runtime, member: WeComMember) -> None:
    await add_commissioner(runtime)
    number = await new_case(runtime)

    mine = await member.say("我的案件")
    assert mine is not None and "您的待办案件（1 件）" in mine and number in mine and "厦门****公司" in mine

    assert await member.say(f"认领 {number}") == f"已受理 {number}。答复企业请发送：回复 {number} 内容"
    case = await load_case(runtime, number)
    assert case.status == "accepted" and case.owner is not None and case.owner.handle == "wang"

    assert await member.say(f"回复 {number} 您好，明天上午上门检定。") == f"已转达企业（{number}）。"
    [relayed] = await rows_of(runtime, "enterprise_reply")
    assert (relayed.channel, relayed.recipient) == ("cli", "ent-1") and "明天上午上门检定" in relayed.payload["text"]

    card = await member.say(f"查看 {number.lower()}")
    assert card is not None and "时间线" in card and "回复企业" in card and MOBILE not in card

    assert await member.say(f"办结{number} 已完成检定，证书已寄出") == f"{number} 已办结，已请企业评价。"
    case = await load_case(runtime, number)
    assert case.status == "resolved" and case.events[-1].text == "已完成检定，证书已寄出"
    assert await member.say("我的案件") == "您目前没有待办案件。"


async def test_refusals_say_why(runtime: Runtime, member: WeComMember, client: TestClient) -> None:
    await add_commissioner(runtime)
    await add_commissioner(runtime, "li", "李华", wecom_user_id="lihua")
    number = await new_case(runtime)
    assert "只有办理中的案件可以办结" in (await member.say(f"办结 {number}") or "")
    await member.say(f"认领 {number}")
    other = WeComMember(client, "lihua")
    assert "由王明负责（首问负责制）" in (await other.say(f"回复 {number} 我来") or "")
    assert "没有编号为 QI-2026-999999 的案件" in (await member.say("查看 QI-2026-999999") or "")
    assert "用法：回复 QI-2026-000001 内容" in (await member.say(f"回复 {number}") or "")
    assert "我的案件" in (await member.say("你好") or "")  # anything else: the command list


async def test_unknown_members_are_refused_and_can_link_with_a_code(runtime: Runtime, client: TestClient) -> None:
    await add_commissioner(runtime, wecom_user_id=None)
    newcomer = WeComMember(client, "zhangsan")
    assert "尚未绑定" in (await newcomer.say("我的案件") or "")
    async with transaction(runtime.sessions) as session:
        code = await linking.issue_code(session, await session.merge(await commissioner(runtime)), datetime.now(UTC))
    assert "绑定成功：王明（wang）" in (await newcomer.say(f"绑定 {code}") or "")
    assert (await commissioner(runtime)).wecom_user_id == "zhangsan"
    assert "绑定码无效或已使用" in (await newcomer.say(f"绑定 {code}") or "")
    assert await newcomer.say("离岗") == "已设为离岗。"
    assert (await commissioner(runtime)).on_duty is False


async def test_a_retried_message_runs_once_and_gets_the_same_answer(runtime: Runtime, member: WeComMember) -> None:
    await add_commissioner(runtime)
    number = await new_case(runtime)
    await member.say(f"认领 {number}")
    text = f"回复 {number} 请准备好加油机的铭牌照片"
    answers = await asyncio.gather(*(member.say(text, msg_id=424242) for _ in range(3)))
    late = await member.say(text, msg_id=424242)
    assert set(answers) == {late} == {f"已转达企业（{number}）。"}
    async with transaction(runtime.sessions) as session:
        replied = await session.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "replied"))
    assert replied == 1
    assert len(await rows_of(runtime, "enterprise_reply")) == 1


async def test_bad_requests_are_4xx_never_500(runtime: Runtime, member: WeComMember, client: TestClient) -> None:
    await add_commissioner(runtime)
    body, query = member.envelope(member.inner("我的案件"))
    assert (await client.post("/wecom/callback", params={**query, "msg_signature": "0" * 40}, data=body)).status == 403
    assert (await client.post("/wecom/callback", params={**query, "timestamp": "1"}, data=body)).status == 403
    assert (await client.post("/wecom/callback", params=query, data=b"<xml><Encrypt>")).status == 400
    entity = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><xml><Encrypt>&e;</Encrypt></xml>'
    assert (await client.post("/wecom/callback", params=query, data=entity)).status == 400
    assert (await client.post("/wecom/callback", params=query, data=b"\xff\xfe<xml/>")).status == 400
    assert (await client.post("/wecom/callback", params=query, data=b"<xml><A>1</A></xml>")).status == 400
    huge = b"<xml><Encrypt>" + b"A" * (runtime.settings.max_body_bytes + 10) + b"</Encrypt></xml>"
    assert (await client.post("/wecom/callback", params=query, data=huge)).status == 413
    # another agent's message, properly encrypted: refused
    assert (await member.post(member.inner("我的案件", agent="99"))).status == 400
    # an inner XML with an entity, properly encrypted: refused
    assert (await member.post('<!DOCTYPE x [<!ENTITY e "boom">]><xml><Content>&e;</Content></xml>')).status == 400


async def test_events_and_non_text(runtime: Runtime, member: WeComMember) -> None:
    await add_commissioner(runtime)
    event = member.inner("", msg_type="event").replace("<Content><![CDATA[]]></Content>",
                                                        "<Event><![CDATA[enter_agent]]></Event>")
    response = await member.post(event)
    assert response.status == 200 and await response.text() == ""
    response = await member.post(member.inner("", msg_type="image"))
    assert member.open(await response.text()) == "请用文字发送命令，例如“我的案件”。"
