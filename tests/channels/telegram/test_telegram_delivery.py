"""Getting notifications out: 429 and blocked chats are retried later and nothing is lost; the
personal-data setting; enterprises over Telegram (one adapter, the same engine); polling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.runtime import Runtime
from bot.storage.db import transaction
from bot.storage.models import Outbox
from tests.channels.telegram.telegram_helpers import COMPANY, MOBILE, TelegramUser, add_commissioner, new_case
from tests.helpers.clock import OffsetClock
from tests.helpers.fakes.telegram_server import FakeTelegram

# PTB 22 warns from inside its own RetryAfter constructor (retry_after will become a timedelta);
# qibot never reads that attribute.
pytestmark = pytest.mark.filterwarnings("ignore:Deprecated since version v22.2:DeprecationWarning")


async def telegram_rows(runtime: Runtime) -> list[Outbox]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(Outbox).where(Outbox.channel == "telegram"))).scalars())


def delivered(fake: FakeTelegram, chat_id: int) -> list[dict[str, Any]]:
    return [p for p in fake.sent("sendMessage", chat_id) if "_result" in p]


async def test_a_429_is_retried_later_and_nothing_is_lost(
    runtime: Runtime, wang: TelegramUser, fake: FakeTelegram, clock: OffsetClock
) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    fake.rate_limit("sendMessage", retry_after=3)
    number = await new_case(runtime)
    stats = await runtime.dispatcher.run_once()
    assert stats.retried == 1
    [row] = await telegram_rows(runtime)
    assert row.status == "pending" and row.attempts == 1 and "rate limit" in (row.last_error or "")
    assert delivered(fake, wang.chat_id) == []
    assert (await runtime.dispatcher.run_once()).handled == 0  # not due yet: no hammering
    clock.advance(seconds=6)
    assert (await runtime.dispatcher.run_once()).sent == 1
    [sent] = delivered(fake, wang.chat_id)
    assert number in sent["text"]
    [row] = await telegram_rows(runtime)
    assert row.status == "sent"


async def test_telegram_unreachable_at_the_first_send_is_retried_later(
    runtime: Runtime, wang: TelegramUser, fake: FakeTelegram, clock: OffsetClock
) -> None:
    """The notifier's bot starts (getMe) at its first send, in whichever process delivers: a
    failure there is a failed attempt like any other, retried, and the row is not lost."""
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    fake.rate_limit("getMe", retry_after=3)
    number = await new_case(runtime)
    assert (await runtime.dispatcher.run_once()).retried == 1
    [row] = await telegram_rows(runtime)
    assert row.status == "pending" and "Telegram unreachable" in (row.last_error or "")
    assert delivered(fake, wang.chat_id) == []
    clock.advance(seconds=6)
    assert (await runtime.dispatcher.run_once()).sent == 1
    assert number in delivered(fake, wang.chat_id)[0]["text"]


async def test_a_blocked_bot_is_retried_not_dropped(
    runtime: Runtime, wang: TelegramUser, fake: FakeTelegram, clock: OffsetClock
) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    fake.block(wang.chat_id)
    await new_case(runtime)
    assert (await runtime.dispatcher.run_once()).retried == 1
    [row] = await telegram_rows(runtime)
    assert row.status == "pending" and "blocked" in (row.last_error or "")


@pytest.mark.parametrize("extra_env", [{"QIBOT_TELEGRAM_SHARE_PERSONAL_DATA": "true"}])
async def test_personal_data_only_with_the_setting(runtime: Runtime, wang: TelegramUser) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    number = await new_case(runtime)
    await runtime.dispatcher.run_once()
    assert MOBILE in wang.inbox()[-1]
    await wang.say(f"/case {number}")
    assert COMPANY in wang.inbox()[-1] and MOBILE in wang.inbox()[-1]


@pytest.mark.parametrize("extra_env", [{"QIBOT_TELEGRAM_ENTERPRISE_CHAT": "true"}])
async def test_enterprises_can_chat_over_telegram(runtime: Runtime, wang: TelegramUser,
                                                  stranger: TelegramUser) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    await stranger.say("/start")
    assert "质量基础设施" in stranger.inbox()[-1]
    await stranger.say("转人工")
    await stranger.say("想问电子秤检定的事")  # what it is about: asked first when there is no case
    await runtime.dispatcher.run_once()
    assert "【转人工】" in wang.inbox()[-1]
    await wang.say("您好，请问需要检定什么设备？", reply_to=wang.last())
    await runtime.dispatcher.run_once()
    assert "请问需要检定什么设备" in stranger.inbox()[-1]
    await stranger.say("/mycases")
    assert "仅供服务专员" in stranger.inbox()[-1]


@pytest.mark.parametrize("extra_env", [{"QIBOT_TELEGRAM_MODE": "polling"}])
async def test_polling_mode_for_development(runtime: Runtime, client: TestClient, wang: TelegramUser,
                                            fake: FakeTelegram) -> None:
    await add_commissioner(runtime, telegram_chat_id=wang.chat_id)
    assert "deleteWebhook" in [c.method for c in fake.calls] and not fake.sent("setWebhook")
    assert (await client.post("/telegram/webhook", json={"update_id": 1})).status in (404, 405)
    fake.updates.append({"update_id": 1, "message": {
        "message_id": 1, "date": 0, "text": "/duty", "chat": {"id": wang.chat_id, "type": "private"},
        "from": {"id": wang.chat_id, "is_bot": False, "first_name": "王"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}})
    for _ in range(100):
        if wang.inbox():
            break
        await asyncio.sleep(0.02)
    assert "您当前在岗" in wang.inbox()[-1]
