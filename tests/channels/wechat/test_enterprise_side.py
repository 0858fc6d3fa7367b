"""What a WeChat user meets beyond plain text: voice with WeChat's speech recognition, pushes
that fail (no token, outside the window) and are handed over at the next message, non-text
messages in the middle of a demand, and English after Traditional."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from bot.runtime import Runtime
from bot.services import outbox
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, MessageLog, Outbox
from bot.storage.types import utcnow
from tests.channels.wechat.wechat_helpers import WeChatServers, client_for
from tests.helpers.fakes.wechat_server import TOKEN, FakeWeChat


async def test_a_voice_message_with_recognition_is_handled_as_its_text(wechat: WeChatServers, runtime: Runtime) -> None:
    user = wechat.user()
    reply = await wechat.send(user, "voice", {"MediaId": "VOICE_1", "Format": "amr", "Recognition": "我要办理。",
                                              "MsgId": "810001"})
    assert reply is not None and "哪方面的服务" in reply["Content"]
    assert "只能阅读文字" not in reply["Content"]
    async with transaction(runtime.sessions) as session:
        row = (await session.execute(select(MessageLog).where(MessageLog.channel_message_id == "810001"))).scalar_one()
    assert row.text == "我要办理。"


async def test_a_voice_message_without_recognition_gets_the_polite_reply(wechat: WeChatServers) -> None:
    reply = await wechat.send(wechat.user(), "voice", {"MediaId": "VOICE_2", "Format": "amr", "MsgId": "810002"})
    assert reply is not None and "语音" in reply["Content"]


async def commissioner_reply(runtime: Runtime, openid: str, text: str) -> None:
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(
            select(ChannelIdentity).where(ChannelIdentity.external_id == openid))).scalar_one()
        await outbox.message_enterprise(session, identity, text, kind="enterprise_reply", now=utcnow(),
                                        author="commissioner:wang")


async def wechat_rows(runtime: Runtime) -> list[Outbox]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(select(Outbox).where(Outbox.channel == "wechat"))).scalars())


async def test_a_push_that_fails_for_want_of_a_token_is_handed_over_at_the_next_message(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    user = wechat.user()
    await wechat.say(user, "你好")
    fake.fail(TOKEN, 500)  # WeChat's token endpoint is down: no access token, no push
    await commissioner_reply(runtime, user, "【王专员（QI-2026-000001）】明天上午上门检定")
    assert (await runtime.dispatcher.run_once()).retried == 1
    reply = await wechat.say(user, "请问专员回复了吗")
    assert reply is not None and reply.startswith("【王专员（QI-2026-000001）】明天上午上门检定")
    assert [r.status for r in await wechat_rows(runtime)] == ["sent"]
    await runtime.dispatcher.run_once()  # the dispatcher does not send it a second time
    assert fake.texts_to(user) == []


async def test_a_push_outside_the_window_is_handed_over_at_the_next_message(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    user = wechat.user()
    await wechat.say(user, "你好")
    async with transaction(runtime.sessions) as session:
        await session.execute(update(ChannelIdentity).where(ChannelIdentity.external_id == user)
                              .values(last_inbound_at=utcnow() - timedelta(hours=49)))
    await commissioner_reply(runtime, user, "【王专员（QI-2026-000001）】证书已出具")
    assert (await runtime.dispatcher.run_once()).held == 1
    reply = await wechat.say(user, "你好")
    assert reply is not None and reply.startswith("【王专员（QI-2026-000001）】证书已出具")
    assert fake.sent == []


async def test_without_app_credentials_messages_wait_for_the_next_message(
    aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat
) -> None:
    """No AppID/AppSecret: nothing can be pushed; a commissioner's reply is held, not left
    pending for a notifier that never comes."""
    client = await client_for(aiohttp_client, runtime, wechat_app_id="", wechat_app_secret="", wechat_aes_key="",
                              wechat_mode="plain")
    servers = WeChatServers(client, fake.app_id, encrypted=False)
    user = servers.user()
    await servers.say(user, "你好")
    await commissioner_reply(runtime, user, "【王专员（QI-2026-000001）】请补充器具清单")
    assert (await runtime.dispatcher.run_once()).held == 1
    reply = await servers.say(user, "好的")
    assert reply is not None and reply.startswith("【王专员（QI-2026-000001）】请补充器具清单")


async def test_non_text_messages_at_the_domain_question_are_handled_and_the_question_comes_again(
    wechat: WeChatServers,
) -> None:
    user = wechat.user()
    await wechat.say(user, "我要办理")
    place = await wechat.send(user, "location", {"Location_X": "24.51", "Location_Y": "118.15", "Scale": "15",
                                                 "Label": "厦门市湖里区枋湖北二路", "MsgId": wechat.next_id()})
    assert place is not None and "湖里区" in place["Content"] and "哪方面的服务" in place["Content"]
    photo = await wechat.send(user, "image", {"PicUrl": "http://mmbiz.qpic.cn/x", "MediaId": "IMG_9",
                                              "MsgId": wechat.next_id()})
    assert photo is not None and "图片" in photo["Content"] and "哪方面的服务" in photo["Content"]
    for reply in (place, photo):
        assert "没有对应的服务领域" not in reply["Content"]
    spoken = await wechat.send(user, "voice", {"MediaId": "VOICE_9", "Format": "amr", "Recognition": "检验检测",
                                               "MsgId": wechat.next_id()})
    assert spoken is not None and "全称" in spoken["Content"]  # the recognised answer is the answer
