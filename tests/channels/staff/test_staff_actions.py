"""Issue 14: every staff action works the same from the CLI, Telegram and WeCom (one table of
actions, three front ends), refuses the same people for the same reasons, and no messenger
answer tells the commissioner to type a ``qibot`` command."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases, live, staff_actions
from bot.services.calendar import WorkingCalendar
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Enterprise, LiveSession, Outbox
from tests.channels.staff.staff_desk import Desk
from tests.channels.telegram import telegram_helpers as tg
from tests.channels.telegram.telegram_helpers import MOBILE, new_case
from tests.channels.wecom import wecom_helpers as wc
from tests.helpers.cases import commissioner, load_case
from tests.helpers.fakes.telegram_server import FakeTelegram
from tests.helpers.fakes.wecom_server import FakeWeCom


async def start_live(runtime: Runtime, number: str) -> None:
    """The enterprise of the case asks for a person (as the 转人工 handler does)."""
    async with transaction(runtime.sessions) as session:
        case = await cases.require_case(session, number)
        identity = await session.get(ChannelIdentity, case.identity_id)
        enterprise = await session.get(Enterprise, case.enterprise_id)
        assert identity is not None and enterprise is not None
        await live.start(session, identity=identity, enterprise=enterprise, domain=None, description="",
                         now=datetime.now(UTC), calendar=WorkingCalendar.for_settings(runtime.settings))


async def kinds(runtime: Runtime) -> list[str]:
    """The kinds of the outbox rows to the enterprise (its identity is on channel ``cli``)."""
    async with transaction(runtime.sessions) as session:
        rows = (await session.execute(select(Outbox).where(Outbox.channel == "cli").order_by(Outbox.id))).scalars()
        return [row.kind for row in rows]


def no_cli_syntax(desk: Desk) -> None:
    """What a messenger says never names the terminal's commands."""
    assert desk.read and not [text for text in desk.read if "qibot " in text]


async def test_accept_reply_note_resolve_reopen(desk: Desk, runtime: Runtime) -> None:
    number = await new_case(runtime)
    await desk.do("wang", "accept", number)
    case = await load_case(runtime, number)
    assert case.status == "accepted" and case.owner is not None and case.owner.handle == "wang"

    await desk.do("wang", "reply", number, "您好，明天上午上门检定。")
    await desk.do("wang", "note", number, "企业希望上午，已电话确认")
    case = await load_case(runtime, number)
    assert [(e.kind, e.text) for e in case.events[-2:]] == [
        ("replied", "您好，明天上午上门检定。"), ("note", "企业希望上午，已电话确认")]
    assert await kinds(runtime) == ["enterprise_accepted", "enterprise_reply"]  # the note stays inside

    await desk.do("wang", "resolve", number, "已完成检定")
    await desk.do("wang", "reopen", number, "企业要求复核")
    case = await load_case(runtime, number)
    assert case.status == "accepted"
    assert [(e.kind, e.actor, e.text) for e in case.events[-2:]] == [
        ("resolved", "commissioner:wang", "已完成检定"), ("reopened", "commissioner:wang", "企业要求复核")]
    assert await kinds(runtime) == ["enterprise_accepted", "enterprise_reply", "enterprise_resolved",
                                    "enterprise_reopened"]
    if desk.front != "cli":
        no_cli_syntax(desk)


async def test_transfer_to_a_named_colleague(desk: Desk, runtime: Runtime) -> None:
    number = await new_case(runtime)
    await desk.do("wang", "accept", number)
    said = await desk.do("wang", "transfer", number, "需要电子秤专家", to="li")
    case = await load_case(runtime, number)
    assert case.owner is not None and case.owner.handle == "li"
    assert (case.events[-1].kind, case.events[-1].text) == ("transferred", "需要电子秤专家")
    assert "李华" in said  # every front end names who has the case now
    async with transaction(runtime.sessions) as session:
        told = (await session.execute(select(Outbox).where(Outbox.kind == "case_transferred",
                                                           Outbox.recipient == "li"))).scalars().all()
    assert told and "需要电子秤专家" in told[0].payload["text"]
    # by name too
    await desk.do("li", "transfer", number, "还给王明", to="王明")
    assert (await load_case(runtime, number)).owner_id == (await commissioner(runtime, "wang")).id


async def test_end_a_live_session(desk: Desk, runtime: Runtime) -> None:
    number = await new_case(runtime)
    await desk.do("wang", "accept", number)
    await start_live(runtime, number)
    assert "只有接待该人工会话的专员" in await desk.do("li", "end_live", number)  # neither owner nor on the call
    await desk.do("wang", "end_live", number)
    async with transaction(runtime.sessions) as session:
        ended = (await session.execute(select(LiveSession))).scalar_one()
    assert (ended.status, ended.ended_by) == ("ended", "commissioner:wang")
    assert (await kinds(runtime))[-1] == "live_ended_by_commissioner"
    assert "没有进行中的人工会话" in await desk.do("wang", "end_live", number)


async def test_duty_my_cases_and_show(desk: Desk, runtime: Runtime) -> None:
    number = await new_case(runtime)
    await desk.do("wang", "duty", on=False)
    assert (await commissioner(runtime)).on_duty is False
    await desk.do("wang", "duty", on=True)
    assert (await commissioner(runtime)).on_duty is True
    mine = await desk.do("wang", "mine")
    assert number in mine and number not in await desk.do("li", "mine")
    await desk.do("wang", "note", number, "先约时间")
    shown = await desk.do("li", "show", number)
    assert number in shown and "先约时间" in shown and MOBILE not in shown
    assert "内部备注" in shown and "note" not in shown  # the timeline in Chinese on every front end


async def test_a_colleague_cannot_work_someone_elses_case(desk: Desk, runtime: Runtime) -> None:
    number = await new_case(runtime)
    await desk.do("wang", "accept", number)
    for action, text in (("resolve", "我来办结"), ("reply", "我来回复"), ("note", "我来备注")):
        said = await desk.do("li", action, number, text)
        assert "王明" in said or "负责人" in said, (action, said)
    assert "由王明负责（首问负责制）" in await desk.do("li", "transfer", number, "我想接手", to="li")
    case = await load_case(runtime, number)
    assert case.status == "accepted" and case.owner is not None and case.owner.handle == "wang"
    assert [e.kind for e in case.events].count("note") == 0 and [e.kind for e in case.events][-1] == "accepted"

    await desk.do("wang", "resolve", number, "已完成")
    assert "只有负责人或主管可以重新打开" in await desk.do("li", "reopen", number, "我觉得没办完")
    assert (await load_case(runtime, number)).status == "resolved"
    if desk.front == "cli":
        assert desk.exit_codes[-1] == 1


async def test_a_refusal_names_the_next_step_in_the_front_ends_own_syntax(desk: Desk, runtime: Runtime) -> None:
    number = await new_case(runtime)
    said = await desk.do("wang", "resolve", number, "已完成")
    assert "只有办理中的案件可以办结" in said
    expected = {"cli": f"qibot case accept {number}", "telegram": f"/accept {number}",
                "wecom": f"认领 {number}"}[desk.front]
    assert expected in said
    assert (await load_case(runtime, number)).status == "new"


async def test_messengers_show_usage_and_never_cli_commands(
    messenger: Desk, runtime: Runtime, telegram_fake: FakeTelegram, wecom_fake: FakeWeCom
) -> None:
    number = await new_case(runtime)
    await runtime.dispatcher.run_once()  # the new-case notification, to Telegram and WeCom
    usage = await messenger.do("wang", "transfer", number)
    verb = "/transfer" if messenger.front == "telegram" else "转交"
    assert f"用法：{verb} QI-2026-000001 账号 原因" in usage
    await messenger.do("wang", "accept", number)
    await start_live(runtime, number)
    await runtime.dispatcher.run_once()  # the live request, with the messenger's own way to end it
    await messenger.do("li", "resolve", number, "越权")
    await messenger.do("wang", "show", "QI-2026-999999")
    if messenger.front == "telegram":
        for text in ("/help", "随便说点什么"):
            await tg.TelegramUser(messenger.client, telegram_fake, 4242).say(text)
        await tg.TelegramUser(messenger.client, telegram_fake, 7777, "陌生人").say("/mycases")
        sent = [m["text"] for m in telegram_fake.sent("sendMessage")]
        live_note = next(t for t in sent if "【转人工】" in t)
        assert f"/endlive {number}" in live_note
    else:
        for text in ("帮助", "绑定"):
            messenger.read.append(await wc.WeComMember(messenger.client, "wangming").say(text) or "")
        messenger.read.append(await wc.WeComMember(messenger.client, "zhangsan").say("我的案件") or "")
        sent = [m["text"]["content"] for m in wecom_fake.messages]
        live_note = next(t for t in sent if "【转人工】" in t)
        assert f"结束人工 {number}" in live_note
    assert len(sent) >= 2 and not [t for t in sent if "qibot " in t]
    messenger.read.extend(sent)
    no_cli_syntax(messenger)



async def test_the_table_refuses_an_action_without_its_arguments(runtime: Runtime) -> None:
    """The last line of defence behind each front end's usage line."""
    await tg.add_commissioner(runtime)
    number = await new_case(runtime)
    async with transaction(runtime.sessions) as session:
        me = await session.merge(await commissioner(runtime))
        with pytest.raises(staff_actions.MissingArgument, match="缺少内容"):
            await staff_actions.run(session, me, "reply", staff_actions.Request(number=number), datetime.now(UTC))
        with pytest.raises(cases.NoActor):  # only reading needs nobody named
            await staff_actions.run(session, None, "accept", staff_actions.Request(number=number), datetime.now(UTC))
    assert (await load_case(runtime, number)).status == "new"
