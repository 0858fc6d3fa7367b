"""Issue 13, points 1 and 7, through the dialogue engine with a movable clock: the privacy notice
and the recorded consent before the first personal field, the mobile a web visitor leaves before
paging a person, and the quotas on open cases, complaints per day and handoffs per hour."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.services import cases, enterprises
from bot.services.consent import NOTICE_VERSION
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Complaint, Enterprise, LiveSession, PrivacyConsent, ServiceCase
from intents.classifier import Nlu
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock
from tests.helpers.runtime import start_runtime

INTAKE = ["我要办理 电子秤需要检定", "厦门示例超市有限公司", "91110000802100433B", "林店长", "13812345678", "湖里",
          "2", "确认"]
COMPLAINT = "我要投诉，专员答应昨天回电话，到现在都没有人联系我们"
# A handoff that says what it is for: connected at once (a bare "转人工" may be asked what for first).
HANDOFF = "转人工，有个问题想直接问专员"


@pytest.fixture
async def quota_runtime(settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock) -> AsyncIterator[Runtime]:
    """The demo runtime with the message rate off: these tests send many messages within a
    second of real time, while the quotas they test run on the movable clock."""
    runtime = await start_runtime(dataclasses.replace(settings, limit_messages=""), nlu, knowledge, clock)
    assert runtime.limits is not None
    runtime.limits.messages = ()
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    yield runtime
    await runtime.close()


async def count(runtime: Runtime, stmt) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def consents(runtime: Runtime) -> list[PrivacyConsent]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(PrivacyConsent).order_by(PrivacyConsent.id))).scalars())


# --- privacy notice and consent ------------------------------------------------------------------

async def test_the_notice_comes_before_the_first_personal_field_and_the_answer_is_the_consent(
    flow_runtime: Runtime,
) -> None:
    chat = Chat(flow_runtime, user="shop")
    replies = []
    for line in INTAKE[:2]:
        replies = await chat.say(line)
    text = "\n".join(replies)
    # The notice says who, what for, how long, how to ask for deletion, and comes with the question.
    assert "个人信息告知" in text and "统一社会信用代码" in text
    assert "厦门市质量基础设施" in text and "保存 3 年" in text and "删除" in text
    assert text.index("个人信息告知") < text.index("请提供统一社会信用代码")
    assert await consents(flow_runtime) == []  # shown is not agreed
    await chat.say(INTAKE[2])
    [consent] = await consents(flow_runtime)
    assert (consent.purpose, consent.method, consent.notice_version, consent.channel) == \
        ("intake", "provided", NOTICE_VERSION, "cli")
    for line in INTAKE[3:]:
        replies = await chat.say(line)
    assert "QI-2026-000001" in replies[-1]
    # A second demand asks nothing personal, and nothing is noticed or recorded twice.
    replies = await chat.say("我要办理 加油机需要检定")
    assert not any("个人信息告知" in r for r in replies)
    assert len(await consents(flow_runtime)) == 1


async def test_declining_the_notice_keeps_nothing(flow_runtime: Runtime) -> None:
    chat = Chat(flow_runtime, user="shy")
    for line in INTAKE[:2]:
        await chat.say(line)
    replies = await chat.say("不同意")
    assert "不会收集您的个人信息" in replies[-1]
    assert await consents(flow_runtime) == []
    assert await count(flow_runtime, select(func.count(Enterprise.id)).where(Enterprise.name.is_not(None))) == 0
    replies = await chat.say("电子秤要不要强制检定？")  # the flow is over: questions are answered again
    assert not any("统一社会信用代码" in r for r in replies)


# --- a mobile before an anonymous web visitor pages a person -----------------------------------------

async def test_a_web_visitor_leaves_a_mobile_before_a_handoff(flow_runtime: Runtime) -> None:
    visitor = Chat(flow_runtime, user="cookie-1", channel="webchat")
    replies = await visitor.say(HANDOFF)
    assert "个人信息告知" in replies[0] and "手机号" in replies[-1]
    assert await count(flow_runtime, select(func.count(ServiceCase.id))) == 0  # nobody paged yet
    replies = await visitor.say("12")
    assert "没有识别到手机号码" in replies[-1]
    replies = await visitor.say("138 1234 5678")
    assert "QI-2026-000001" in replies[-1]
    async with flow_runtime.sessions() as session:
        identity = (await session.execute(select(ChannelIdentity).where(
            ChannelIdentity.external_id == "cookie-1"))).scalar_one()
        enterprise = await enterprises.existing_enterprise(session, identity)
        case = await cases.require_case(session, "QI-2026-000001")
    assert enterprise is not None and enterprise.mobile == "13812345678"
    assert case.description == HANDOFF  # the held request, not the mobile
    [consent] = await consents(flow_runtime)
    assert (consent.purpose, consent.channel) == ("handoff", "webchat")
    # Next time the mobile is on file: straight through.
    await visitor.say("结束人工")
    replies = await visitor.say(HANDOFF)
    assert "QI-2026-" in replies[-1] and not any("手机号" in r for r in replies)


async def test_a_web_visitor_can_cancel_or_ask_something_else_instead(flow_runtime: Runtime) -> None:
    visitor = Chat(flow_runtime, user="cookie-2", channel="webchat")
    await visitor.say(HANDOFF)
    assert "已取消" in (await visitor.say("取消"))[-1]
    await visitor.say(HANDOFF)
    replies = await visitor.say("电子秤要不要强制检定？")
    assert any("检定" in r for r in replies) and not any("手机号" in r for r in replies)
    assert await count(flow_runtime, select(func.count(ServiceCase.id))) == 0
    assert await consents(flow_runtime) == []


async def test_a_web_visitors_complaint_waits_for_the_mobile(flow_runtime: Runtime) -> None:
    visitor = Chat(flow_runtime, user="cookie-3", channel="webchat")
    replies = await visitor.say(COMPLAINT)
    assert "登记投诉前请先留一个手机号码" in replies[-1]
    assert await count(flow_runtime, select(func.count(Complaint.id))) == 0
    replies = await visitor.say("13912345678")
    assert "TS-2026-000001" in replies[-1]
    async with flow_runtime.sessions() as session:
        complaint = (await session.execute(select(Complaint))).scalar_one()
    assert "没有人联系" in complaint.text


async def test_wechat_users_are_not_asked_for_a_mobile(flow_runtime: Runtime) -> None:
    replies = await Chat(flow_runtime, user="openid-1", channel="wechat").say(HANDOFF)
    assert "QI-2026-000001" in replies[-1]


# --- quotas from the database ---------------------------------------------------------------------

async def seed_open_cases(runtime: Runtime, user: str, n: int, clock: Clock, mobile: str | None = None) -> None:
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity).where(
            ChannelIdentity.external_id == user))).scalar_one()
        enterprise = await enterprises.enterprise_for(session, identity)
        enterprise.mobile = mobile
        for _ in range(n):
            await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                                  description="电子秤检定", mode="onsite", district="湖里", now=clock())


async def test_open_cases_per_enterprise_and_per_mobile(quota_runtime: Runtime, clock: Clock) -> None:
    limit = quota_runtime.settings.limit_open_cases
    first = Chat(quota_runtime, user="openid-a", channel="wechat")
    await first.say("你好")
    await seed_open_cases(quota_runtime, "openid-a", limit, clock, mobile="13812345678")
    replies = await first.say("我要办理 加油机需要检定")
    assert f"已有 {limit} 件需求正在办理" in replies[-1]
    # A handoff joins an open case and opens nothing new: still allowed.
    assert "QI-2026-" in (await first.say(HANDOFF))[-1]
    await first.say("结束人工")
    # Another identity giving the same mobile is the same person for the quota.
    second = Chat(quota_runtime, user="openid-b", channel="wechat")
    await second.say("你好")
    await seed_open_cases(quota_runtime, "openid-b", 0, clock, mobile="13812345678")
    assert f"已有 {limit} 件需求正在办理" in (await second.say(HANDOFF))[-1]
    # One case closes: a new demand is taken again.
    async with transaction(quota_runtime.sessions) as session:
        case = await cases.require_case(session, "QI-2026-000001")
        case.status = "closed"
    replies = await first.say("我要办理 加油机需要检定")
    assert not any("件需求正在办理" in r for r in replies) and any("请提供" in r or "请问" in r for r in replies)
    assert await count(quota_runtime, select(func.count(ServiceCase.id))) == limit


async def test_complaints_per_day(quota_runtime: Runtime, clock: Clock) -> None:
    limit = quota_runtime.settings.limit_complaints_per_day
    user = Chat(quota_runtime, user="openid-c", channel="wechat")
    for i in range(limit):
        replies = await user.say(f"{COMPLAINT}（第{i + 1}次）")
        assert f"TS-2026-00000{i + 1}" in replies[-1]
    replies = await user.say(f"{COMPLAINT}（又一次）")
    assert f"今天已提交 {limit} 件投诉" in replies[-1]
    assert await count(quota_runtime, select(func.count(Complaint.id))) == limit
    clock.advance(days=1, minutes=1)
    assert "TS-2026-" in (await user.say(f"{COMPLAINT}（第二天）"))[-1]


async def test_handoffs_per_hour(quota_runtime: Runtime, clock: Clock) -> None:
    limit = quota_runtime.settings.limit_handoffs_per_hour
    user = Chat(quota_runtime, user="openid-d", channel="wechat")
    for _ in range(limit):
        assert "QI-2026-" in (await user.say(HANDOFF))[-1]
        await user.say("结束人工")
        clock.advance(minutes=5)
    replies = await user.say(HANDOFF)
    assert "一小时内已多次请求人工服务" in replies[-1]
    assert await count(quota_runtime, select(func.count(LiveSession.id))) == limit
    clock.advance(hours=1)
    assert "QI-2026-" in (await user.say(HANDOFF))[-1]


async def test_the_terminal_chat_has_no_limits(quota_runtime: Runtime, clock: Clock) -> None:
    """``qibot chat`` runs where the database is; limiting it would protect nothing."""
    user = Chat(quota_runtime, user="operator")
    for _ in range(quota_runtime.settings.limit_handoffs_per_hour + 2):
        assert "QI-2026-" in (await user.say(HANDOFF))[-1]
        await user.say("结束人工")
