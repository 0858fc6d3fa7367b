"""The dialogue engine end to end over a real database: what a user would notice."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.config import Settings
from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services.knowledge import KnowledgeService
from bot.storage.models import ConversationState, MessageLog
from handlers.base import Match, Outcome, TurnContext
from handlers.registry import HandlerRegistry, default_handlers
from intents.classifier import Nlu
from tests.helpers.chat import Chat


async def count_messages(runtime: Runtime, direction: str | None = None) -> int:
    async with runtime.sessions() as session:
        stmt = select(func.count()).select_from(MessageLog)
        if direction:
            stmt = stmt.where(MessageLog.direction == direction)
        return int(await session.scalar(stmt) or 0)


async def test_a_greeting_gets_the_welcome_with_the_services(chat: Chat) -> None:
    replies = await chat.say("你好")
    assert len(replies) == 1
    assert "质量基础设施" in replies[0]
    assert "计量" in replies[0] and "知识产权" in replies[0]


async def test_a_question_is_answered_from_the_knowledge_base_with_its_basis(chat: Chat) -> None:
    replies = await chat.say("外观设计专利的保护期是多少年？")
    assert "依据" in replies[0] and "专利法" in replies[0]
    assert "15" in replies[0]


async def test_traditional_in_traditional_out(chat: Chat) -> None:
    replies = await chat.say("您好，請問有什麼服務")
    assert replies
    text = replies[0]
    assert "服務" in text or "質量" in text
    assert "服务" not in text and "质量" not in text


async def test_an_out_of_scope_demand_is_referred_honestly(chat: Chat) -> None:
    replies = await chat.say("我想办个营业执照，去哪里办")
    assert any(hotline in replies[0] for hotline in ("12345", "政务服务", "登记"))


async def test_a_redelivered_message_gets_the_first_answer_and_no_second_turn(runtime: Runtime) -> None:
    first = await runtime.dialogue.handle(InboundMessage("webchat", "u1", "你好", message_id="m-1"))
    again = await runtime.dialogue.handle(InboundMessage("webchat", "u1", "你好", message_id="m-1"))
    assert not first.duplicate and again.duplicate
    assert any(r.choices for r in first.replies)  # the welcome offers choices...
    assert again.replies == first.replies  # ...and the replay has them too, not just the text
    assert await count_messages(runtime, "in") == 1
    assert await count_messages(runtime, "out") == len(first.replies)


async def test_bad_input_gets_a_polite_reply_and_is_kept(chat: Chat, runtime: Runtime) -> None:
    inputs = ["", "   \n\t ", "😀😀😀", "x" * 10_000, "\x00\x07\x1b[31m hello", "<xml><![CDATA[]]></xml>",
              "'; DROP TABLE message_log; --", "ＱＩ－２０２６－０００１２３ 你好 hello 請問"]
    replies = {text: await chat.say(text) for text in inputs}
    for text, answer in replies.items():
        assert answer and all(r.strip() for r in answer), text
    assert "空消息" in replies[""][0] and "空消息" in replies["   \n\t "][0]
    assert "10000" in replies["x" * 10_000][0]  # says how long it was and what the limit is
    assert await count_messages(runtime, "in") == len(inputs)
    async with runtime.sessions() as session:
        longest = await session.scalar(select(func.max(func.length(MessageLog.text))))
    assert longest == 10_000  # the long message is stored whole, not truncated


async def test_state_survives_a_restart(settings: Settings, nlu: Nlu, knowledge: KnowledgeService) -> None:
    first = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    chat = Chat(first, user="restart")
    replies = await chat.say("我要办理 加油机需要校准")  # a demand opens the intake flow: state to keep
    await first.close()
    async with (await Runtime.start(settings, nlu=nlu, knowledge=knowledge)).sessions() as session:
        state = await session.scalar(select(ConversationState))
        logged = await session.scalar(select(func.count()).select_from(MessageLog))
    assert replies
    assert state is not None and state.version == 1
    assert logged == 1 + len(replies)


async def test_a_multi_turn_choice_survives_a_restart(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService
) -> None:
    """Ask something the KB can only suggest answers to, restart, pick a number: the pick works."""
    first = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    chat = Chat(first, user="picker")
    replies = await chat.say("认证")
    await first.close()
    if "您是不是想问" not in replies[0]:
        # The KB answered outright; the restart property is then covered by the detail follow-up.
        second = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
        follow = await Chat(second, user="picker").say("详情")
        await second.close()
        assert follow and "抱歉" not in follow[0]
        return
    second = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    picked = await Chat(second, user="picker").say("1")
    await second.close()
    assert "依据" in picked[0]


class ExplodingHandler:
    name = "exploding"

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("always")

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        ctx.state.enter("broken", half="done")
        raise RuntimeError("boom")


async def test_a_failing_handler_apologises_keeps_the_message_and_the_state(runtime: Runtime) -> None:
    runtime.dialogue.registry = HandlerRegistry([ExplodingHandler(), *default_handlers().handlers])
    replies = await Chat(runtime).say("你好")
    assert "出了点问题" in replies[0]
    assert await count_messages(runtime, "in") == 1
    async with runtime.sessions() as session:
        state = await session.scalar(select(ConversationState))
    assert state is None or state.flow is None  # the half-done change was rolled back (nothing else to save)


async def test_two_users_are_independent(chat: Chat) -> None:
    await chat.say("认证")
    other = await chat.as_user("someone-else").say("1")
    assert "依据" not in other[0]  # "1" means nothing to a user who was offered no choices


async def test_the_engine_runs_unchanged_on_postgresql(
    postgres_url: str, tmp_path, nlu: Nlu, knowledge: KnowledgeService
) -> None:
    from bot.config import load_settings

    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path), "QIBOT_DATABASE_URL": postgres_url})
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    try:
        chat = Chat(runtime, user="pg")
        assert "质量基础设施" in (await chat.say("你好"))[0]
        again = await runtime.dialogue.handle(InboundMessage("cli", "pg", "你好", message_id="dup"))
        dup = await runtime.dialogue.handle(InboundMessage("cli", "pg", "你好", message_id="dup"))
        assert dup.duplicate and dup.replies == again.replies
    finally:
        await runtime.close()
