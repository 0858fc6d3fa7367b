"""Tap-choices in WeChat: ``weixin://bizmsgmenu`` links in passive replies, menu messages
(``msgmenu``) in customer-service pushes, and the plain "· 1" lines as the fallback (a setting,
or WeChat refusing the menu message)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, update

from bot.channels.wechat.render import MAX_TEXT_BYTES, format_replies, menu_link, split_text
from bot.messages import Reply
from bot.runtime import Runtime
from bot.services import outbox
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity
from bot.storage.types import utcnow
from handlers.base import Match, Outcome, TurnContext
from tests.channels.wechat.wechat_helpers import WeChatServers, client_for, put_first, settle
from tests.helpers.fakes.wechat_server import FakeWeChat


def test_a_numbered_line_becomes_the_link_and_other_choices_are_added() -> None:
    reply = Reply("请问需要哪方面的服务？\n1. 计量\n2. 标准化", choices=("1", "2", "转人工"))
    text = format_replies([reply], tappable=True)
    lines = text.split("\n")
    assert lines[1] == '<a href="weixin://bizmsgmenu?msgmenucontent=1&msgmenuid=1">1. 计量</a>'
    assert lines[2] == '<a href="weixin://bizmsgmenu?msgmenucontent=2&msgmenuid=2">2. 标准化</a>'
    assert lines[3] == '· <a href="weixin://bizmsgmenu?msgmenucontent=转人工&msgmenuid=3">转人工</a>'
    # without tappable choices: the lines to type from, as before
    assert format_replies([reply]) == "请问需要哪方面的服务？\n1. 计量\n2. 标准化\n· 1\n· 2\n· 转人工"


def test_a_choice_cannot_break_out_of_its_link() -> None:
    link = menu_link('a"&b c<d>', "x<y>", 1)
    assert link == '<a href="weixin://bizmsgmenu?msgmenucontent=a%22%26b%20c%3Cd%3E&msgmenuid=1">xy</a>'


def test_a_long_text_is_never_cut_inside_a_link() -> None:
    links = "\n".join(menu_link(f"选项{i}", f"第{i}项 " + "很长的标题" * 4, i) for i in range(1, 10))
    text = "说明" * 480 + links  # the cut point falls among the links, on no line break of its own
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p.encode()) <= MAX_TEXT_BYTES for p in pieces)
    for piece in pieces:
        assert piece.count("<a ") == piece.count("</a>")


async def test_the_domain_question_offers_tappable_lines(wechat: WeChatServers) -> None:
    reply = await wechat.say(wechat.user(), "我要办理")
    assert reply is not None
    assert '<a href="weixin://bizmsgmenu?msgmenucontent=1&msgmenuid=1">1. 计量</a>' in reply
    assert "· 1" not in reply


async def test_a_tap_arrives_as_text_with_bizmsgmenuid_and_is_the_answer(wechat: WeChatServers) -> None:
    user = wechat.user()
    await wechat.say(user, "我要办理")
    tapped = await wechat.send(user, "text", {"Content": "1", "MsgId": wechat.next_id(), "bizmsgmenuid": "1"})
    assert tapped is not None and "全称" in tapped["Content"]


async def test_the_setting_turns_the_links_off(aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat) -> None:
    client = await client_for(aiohttp_client, runtime, wechat_tappable_choices=False)
    servers = WeChatServers(client, fake.app_id)
    reply = await servers.say(servers.user(), "我要办理")
    assert reply is not None and "bizmsgmenu" not in reply and "· 1" in reply


class SlowChoices:
    name = "test_slow_choices"
    flows: tuple[str, ...] = ()

    def matches(self, ctx: TurnContext) -> Match | None:
        return Match("test") if ctx.message.text == "慢慢选" else None

    async def handle(self, ctx: TurnContext, match: Match) -> Outcome:
        await asyncio.sleep(0.5)
        return Outcome((Reply("先说一句"), Reply("请选择：", choices=("确认", "取消"))))


async def test_a_late_answer_with_choices_is_pushed_as_a_menu_message(
    aiohttp_client: Any, runtime: Runtime, fake: FakeWeChat
) -> None:
    client = await client_for(aiohttp_client, runtime, wechat_reply_budget=0.2)
    servers = WeChatServers(client, fake.app_id)
    put_first(runtime, SlowChoices())
    user = servers.user()
    assert await servers.say(user, "慢慢选") is None
    await settle(runtime, client)
    await runtime.dispatcher.run_once()
    assert fake.menus_to(user) == [{
        "head_content": "先说一句\n\n请选择：",
        "list": [{"id": "1", "content": "确认"}, {"id": "2", "content": "取消"}],
        "tail_content": "",
    }]


async def enterprise_message(runtime: Runtime, openid: str, text: str, choices: tuple[str, ...],
                             script: str = "hans") -> None:
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(
            select(ChannelIdentity).where(ChannelIdentity.external_id == openid))).scalar_one()
        identity.script = script
        await outbox.message_enterprise(session, identity, text, kind="enterprise_resolved", now=utcnow(),
                                        author="system", choices=choices)


async def test_a_rating_request_is_a_menu_message_in_the_users_script(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    user = wechat.user()
    await wechat.say(user, "你好")
    await enterprise_message(runtime, user, "请为本次服务打分", ("5分 非常满意", "1分 非常不满意"), script="hant")
    await runtime.dispatcher.run_once()
    assert fake.menus_to(user) == [{
        "head_content": "請為本次服務打分",
        "list": [{"id": "1", "content": "5分 非常滿意"}, {"id": "2", "content": "1分 非常不滿意"}],
        "tail_content": "",
    }]
    assert fake.texts_to(user) == []


async def test_a_refused_menu_message_goes_out_as_text_with_lines_to_type(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    fake.refuse_menus = True  # 40200, as for test accounts
    user = wechat.user()
    await wechat.say(user, "你好")
    await enterprise_message(runtime, user, "请为本次服务打分", ("5分 非常满意", "1分 非常不满意"))
    stats = await runtime.dispatcher.run_once()
    assert stats.sent == 1 and fake.menus_to(user) == []
    assert fake.texts_to(user) == ["请为本次服务打分\n· 5分 非常满意\n· 1分 非常不满意"]


async def test_a_held_message_with_choices_is_handed_over_with_its_links(
    wechat: WeChatServers, runtime: Runtime, fake: FakeWeChat
) -> None:
    user = wechat.user()
    await wechat.say(user, "你好")
    async with transaction(runtime.sessions) as session:  # out of the 48-hour window
        await session.execute(update(ChannelIdentity).where(ChannelIdentity.external_id == user)
                              .values(last_inbound_at=utcnow().replace(year=2020)))
    await enterprise_message(runtime, user, "请为本次服务打分", ("5分 非常满意",))
    assert (await runtime.dispatcher.run_once()).held == 1
    reply = await wechat.say(user, "在吗")
    assert reply is not None and reply.startswith(
        '请为本次服务打分\n· <a href="weixin://bizmsgmenu?msgmenucontent=5分%20非常满意&msgmenuid=1">5分 非常满意</a>')
