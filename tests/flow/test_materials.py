"""Images and files an enterprise sends are attached to its open case as materials."""

from __future__ import annotations

from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services import archive, cases, ratings
from bot.storage.db import transaction
from bot.storage.models import Commissioner
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock

INTAKE = ["我要办理 电子秤需要检定", "厦门示例超市有限公司", "91110000802100433B", "林店长", "13812345678", "湖里",
          "2", "确认"]


async def test_an_image_goes_to_the_open_case_and_into_its_archive(flow_runtime: Runtime, clock: Clock) -> None:
    chat = Chat(flow_runtime, user="shop")
    for line in INTAKE:
        replies = await chat.say(line)
    assert "QI-2026-000001" in replies[0]
    photo = InboundMessage("cli", "shop", "[图片]", message_id="p1", kind="image", attachment="wechat-media:M123")
    result = await flow_runtime.dialogue.handle(photo)
    assert "已作为材料附到需求 QI-2026-000001" in result.replies[0].text
    async with flow_runtime.sessions() as session:
        case = await cases.require_case(session, "QI-2026-000001")
    attached = [e for e in case.events if e.kind == "attachment"]
    assert [e.data["ref"] for e in attached] == ["wechat-media:M123"]
    assert "补充材料" in (await chat.say("查询 QI-2026-000001"))[0]

    async with transaction(flow_runtime.sessions) as session:
        case = await cases.require_case(session, "QI-2026-000001")
        owner = await session.get(Commissioner, case.assignee_id)
        assert owner is not None
        await cases.accept(session, case, owner, clock())
        await cases.resolve(session, case, owner, "已检定", clock())
        await ratings.record_rating(session, case, 5, clock())
    async with flow_runtime.sessions() as session:
        stored = await archive.get_archive(session, "QI-2026-000001")
    assert stored is not None and stored.content["attachments"][0]["ref"] == "wechat-media:M123"


async def test_without_an_open_case_an_image_gets_a_polite_answer(flow_runtime: Runtime) -> None:
    photo = InboundMessage("cli", "visitor", "[图片]", message_id="p2", kind="image", attachment="wechat-media:X")
    result = await flow_runtime.dialogue.handle(photo)
    assert "只能阅读文字" in result.replies[0].text
