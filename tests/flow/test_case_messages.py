"""An enterprise's answer to its commissioner reaches that commissioner: on the case timeline
(what the commissioner's card shows) and in the outbox; for as long as the policy says."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases, desk
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Outbox
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock

INTAKE = ["我要办理 电子秤需要检定", "厦门示例超市有限公司", "91110000802100433B", "林店长", "13812345678", "湖里",
          "2", "确认"]


async def reply_as_assignee(runtime: Runtime, text: str, clock: Clock) -> None:
    async with transaction(runtime.sessions) as session:
        case = await cases.require_case(session, "QI-2026-000001")
        actor = await cases.commissioner_for_action(session, case, None)
        await cases.reply(session, case, actor, text, clock())


async def test_an_answer_reaches_the_commissioners_card_and_inbox(flow_runtime: Runtime, clock: Clock) -> None:
    chat = Chat(flow_runtime, user="shop")
    for line in INTAKE:
        await chat.say(line)
    await reply_as_assignee(flow_runtime, "这些电子秤都是收银台用的吗？", clock)
    replies = await chat.say("是的，都是收银台用的")
    assert "已转给王专员（QI-2026-000001）" in replies[-1]
    async with flow_runtime.sessions() as session:
        case = await cases.require_case(session, "QI-2026-000001")
        owner = await session.get(Commissioner, case.owner_id)
        rows = (await session.execute(select(Outbox).where(Outbox.kind == "case_message"))).scalars().all()
    assert owner is not None and owner.handle == "wang"
    card = desk.case_card(case, tz=flow_runtime.policy.calendar.tz)
    assert "企业留言 enterprise：是的，都是收银台用的" in card
    assert [(r.channel, r.recipient, r.payload["case"]) for r in rows] == [("console", "wang", "QI-2026-000001")]
    assert "是的，都是收银台用的" in rows[0].payload["text"]


async def test_the_exchange_lasts_as_long_as_the_policy_says(flow_runtime: Runtime, clock: Clock) -> None:
    flow_runtime.dialogue.policy = dataclasses.replace(flow_runtime.dialogue.policy,
                                                       case_conversation=timedelta(hours=1))
    chat = Chat(flow_runtime, user="shop")
    for line in INTAKE:
        await chat.say(line)
    await reply_as_assignee(flow_runtime, "明天上午上门", clock)
    clock.advance(minutes=59)
    assert "已转给王专员" in (await chat.say("好的，明天几点到？"))[-1]
    clock.advance(minutes=2)
    assert "已转给" not in (await chat.say("好的，明天几点到？"))[-1]
