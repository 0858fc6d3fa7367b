"""A commissioner works cases from Telegram: notifications with buttons and no personal data,
认领 / 办结 / 查看, replies relayed to the enterprise, /mycases, /case, /duty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases
from bot.storage.db import transaction
from bot.storage.models import Commissioner, LiveSession, MessageLog, Outbox
from tests.channels.telegram.telegram_helpers import (
    COMPANY,
    CREDIT_CODE,
    MOBILE,
    PUBLIC_URL,
    TelegramUser,
    add_commissioner,
    commissioner,
    load_case,
    new_case,
)
from tests.helpers.fakes.telegram_server import FakeTelegram


async def notified(runtime: Runtime, wang: TelegramUser) -> str:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    number = await new_case(runtime)
    await runtime.dispatcher.run_once()
    return number


async def enterprise_rows(runtime: Runtime, kind: str) -> list[Outbox]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(Outbox).where(Outbox.kind == kind))).scalars())


async def test_a_new_case_arrives_with_buttons_and_without_personal_data(
    runtime: Runtime, wang: TelegramUser, fake: FakeTelegram
) -> None:
    number = await notified(runtime, wang)
    [sent] = fake.sent("sendMessage", wang.chat_id)
    text = sent["text"]
    assert number in text and "计量" in text
    assert MOBILE not in text and "138****5678" in text
    assert CREDIT_CODE not in text and COMPANY not in text and "厦门****公司" in text
    assert "qibot case" not in text  # CLI hints are for the terminal
    assert f"{PUBLIC_URL}/console/cases/{number}" in text
    buttons = [(b["text"], b["callback_data"]) for b in sent["reply_markup"]["inline_keyboard"][0]]
    assert buttons == [("认领", f"accept:{number}"), ("办结", f"resolve:{number}"), ("查看", f"show:{number}")]


async def test_pressing_accept_takes_the_case(runtime: Runtime, wang: TelegramUser, fake: FakeTelegram) -> None:
    number = await notified(runtime, wang)
    notification = wang.last()
    assert await wang.press(f"accept:{number}", notification) == 200
    case = await load_case(runtime, number)
    assert case.status == "accepted" and case.owner is not None and case.owner.handle == "wang"
    assert (case.events[-1].kind, case.events[-1].actor) == ("accepted", "commissioner:wang")
    assert fake.sent("answerCallbackQuery")[-1]["text"] == f"已受理 {number}"
    edited = fake.sent("editMessageText")[-1]
    assert edited["text"].endswith("✅ 已由王明受理")
    assert [b["callback_data"] for b in edited["reply_markup"]["inline_keyboard"][0]] == [
        f"resolve:{number}", f"show:{number}"]
    assert len(await enterprise_rows(runtime, "enterprise_accepted")) == 1

    await wang.press(f"accept:{number}", notification)  # a second tap is refused with the reason
    answer = fake.sent("answerCallbackQuery")[-1]
    assert "您已受理" in answer["text"] and answer["show_alert"] is True


async def test_replying_to_a_notification_reaches_the_enterprise(runtime: Runtime, wang: TelegramUser,
                                                                  chat: Any) -> None:
    number = await notified(runtime, wang)
    await wang.say("您好，我们明天上午上门检定。", reply_to=wang.last())
    assert wang.inbox()[-1].startswith(f"已转达企业（{number}）")
    case = await load_case(runtime, number)
    assert case.status == "accepted"  # answering a new case takes it (首问负责制)
    assert case.events[-1].kind == "replied" and case.events[-1].text == "您好，我们明天上午上门检定。"
    [row] = await enterprise_rows(runtime, "enterprise_reply")
    assert (row.channel, row.recipient) == ("cli", "ent-1") and "明天上午上门检定" in row.payload["text"]
    async with transaction(runtime.sessions) as session:
        logged = (await session.execute(select(MessageLog).where(MessageLog.author == "commissioner:wang"))).scalars()
        assert any("明天上午上门检定" in m.text for m in logged)
    await runtime.dispatcher.run_once()
    replies = await chat.as_user("ent-1").say("好的")
    assert any("王专员" in r and "明天上午上门检定" in r for r in replies)  # the enterprise's own channel


async def test_a_live_handoff_is_relayed_both_ways_and_kept_alive(
    runtime: Runtime, wang: TelegramUser, chat: Any
) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id, domains=("metrology", "quality"))
    enterprise = chat.as_user("live-ent")
    await enterprise.say("转人工")
    await enterprise.say("电子秤检定的事")  # what it is about: asked first when there is no case
    await runtime.dispatcher.run_once()
    assert "【转人工】" in wang.inbox()[-1]
    await enterprise.say("我们的电子秤需要检定")
    await runtime.dispatcher.run_once()
    assert "我们的电子秤需要检定" in wang.inbox()[-1]
    async with transaction(runtime.sessions) as session:
        live = (await session.execute(select(LiveSession))).scalar_one()
        live.last_activity_at -= timedelta(minutes=25)
        before = live.last_activity_at
    await wang.say("请把型号发给我", reply_to=wang.last())
    async with transaction(runtime.sessions) as session:
        live = (await session.execute(select(LiveSession))).scalar_one()
        assert live.status == "active" and live.last_activity_at > before
    await runtime.dispatcher.run_once()
    assert any("请把型号发给我" in r for r in await enterprise.say("好的"))


async def test_resolve_asks_for_a_summary_in_a_reply(runtime: Runtime, wang: TelegramUser,
                                                     fake: FakeTelegram) -> None:
    number = await notified(runtime, wang)
    notification = wang.last()
    await wang.press(f"resolve:{number}", notification)  # not accepted yet
    assert "只有办理中的案件可以办结" in fake.sent("answerCallbackQuery")[-1]["text"]
    await wang.press(f"accept:{number}", notification)
    await wang.press(f"resolve:{number}", notification)
    sent = fake.sent("sendMessage", wang.chat_id)[-1]
    assert sent["text"].startswith(f"【办结 {number}】") and sent["reply_markup"]["force_reply"] is True
    prompt = wang.last()  # as Telegram returns it (a ForceReply is not echoed back)
    await wang.say("已完成加油机检定，证书已寄出。", reply_to=prompt)
    case = await load_case(runtime, number)
    assert case.status == "resolved" and case.events[-1].text == "已完成加油机检定，证书已寄出。"
    assert wang.inbox()[-1] == f"{number} 已办结，已请企业评价。"
    assert len(await enterprise_rows(runtime, "enterprise_resolved")) == 1


async def test_resolving_with_the_default_summary(runtime: Runtime, wang: TelegramUser) -> None:
    number = await notified(runtime, wang)
    await wang.say(f"/accept {number}")
    await wang.press(f"resolve:{number}", wang.last())
    await wang.say("默认", reply_to=wang.last())
    case = await load_case(runtime, number)
    assert case.status == "resolved" and case.events[-1].text.startswith("已办结")


async def test_mycases_case_and_show(runtime: Runtime, wang: TelegramUser, fake: FakeTelegram) -> None:
    number = await notified(runtime, wang)
    await wang.say("/mycases")
    listing = wang.last()
    assert "您的待办案件（1 件）" in listing["text"] and number in listing["text"] and "厦门****公司" in listing["text"]
    assert listing["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"show:{number}"
    await wang.say(f"/case {number.lower()}")
    card = wang.last()["text"]
    assert number in card and "时间线" in card and "指派" in card
    assert MOBILE not in card and CREDIT_CODE not in card and COMPANY not in card
    await wang.press(f"show:{number}", listing)
    assert wang.last()["text"] == card
    await wang.say("/case")
    assert "用法" in wang.inbox()[-1]
    await wang.say("/case QI-2026-999999")
    assert "没有编号为 QI-2026-999999 的案件" in wang.inbox()[-1]


async def test_duty_on_and_off(runtime: Runtime, wang: TelegramUser) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    await wang.say("/duty off")
    assert wang.inbox()[-1] == "已设为离岗。" and (await commissioner(runtime)).on_duty is False
    await wang.say("/duty")
    assert "您当前离岗" in wang.inbox()[-1]
    await wang.say("/duty on")
    assert (await commissioner(runtime)).on_duty is True


async def test_case_errors_are_explained(runtime: Runtime, wang: TelegramUser, stranger: TelegramUser) -> None:
    number = await notified(runtime, wang)
    await add_commissioner(runtime, "li", "李华", telegram_chat_id=stranger.chat_id)
    await wang.say(f"/accept {number}")
    await stranger.say(f"/reply {number} 我来跟进")
    assert "由王明负责（首问负责制）" in stranger.inbox()[-1]
    await wang.say("随便说点什么")
    assert "回复" in wang.inbox()[-1]  # not a reply to anything: how to answer an enterprise


async def test_overdue_and_low_rated_cases_arrive_with_fitting_buttons(runtime: Runtime, wang: TelegramUser,
                                                                       fake: FakeTelegram) -> None:
    number = await notified(runtime, wang)
    async with transaction(runtime.sessions) as session:
        me = (await session.execute(select(Commissioner).where(Commissioner.handle == "wang"))).scalar_one()
        now = datetime.now(UTC)
        await cases.notify_commissioner(session, me, "case_escalated", f"【超时未受理】{number}（计量）……", now,
                                        case_number=number)
        await cases.notify_commissioner(session, me, "low_rating_followup", f"【低分回访】{number} 收到 1 分评价",
                                        now, case_number=number)
    await runtime.dispatcher.run_once()
    escalated, low = fake.sent("sendMessage", wang.chat_id)[-2:]
    assert [b["text"] for b in escalated["reply_markup"]["inline_keyboard"][0]] == ["认领", "办结", "查看"]
    assert [b["text"] for b in low["reply_markup"]["inline_keyboard"][0]] == ["查看"]
    assert "回复本消息即可答复企业" in escalated["text"] and "回复本消息" not in low["text"]
