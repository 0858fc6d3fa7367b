"""Issue 14: services take the time from the caller's (injected) clock, not from ``utcnow()``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services.limits import Limiter
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, ConversationState, LimitRefusal
from tests.helpers.chat import Chat

FIXED = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_the_conversation_state_is_stamped_by_the_engine_clock(runtime: Runtime) -> None:
    runtime.dialogue.clock = lambda: FIXED
    await Chat(runtime, user="clocked").say("我要办理 加油机需要校准")
    async with transaction(runtime.sessions) as session:
        row = (await session.execute(
            select(ConversationState).join(ChannelIdentity, ChannelIdentity.id == ConversationState.identity_id)
            .where(ChannelIdentity.external_id == "clocked"))).scalar_one()
    assert row.flow is not None
    assert _aware(row.updated_at) == FIXED


async def test_limit_refusals_are_counted_on_the_injected_clock(runtime: Runtime) -> None:
    limiter = Limiter(runtime.settings, sessions=runtime.sessions, clock=lambda: FIXED)
    message = InboundMessage(channel="wechat", user_id="openid-clock", text="刷屏")
    results = [await limiter.check_message(message) for _ in range(30)]
    assert any(result is not None for result in results)
    await limiter.flush()
    async with transaction(runtime.sessions) as session:
        rows = (await session.execute(select(LimitRefusal))).scalars().all()
    assert [row.day for row in rows] == ["2031-03-04"]
    assert _aware(rows[0].last_at) == FIXED
    await limiter.close()
