"""The staff console in a real Chromium: a commissioner follows the link of a new-case
notification, signs in, accepts, replies; the enterprise answers in the web chat and the answer
appears on the case page without a reload; the commissioner resolves; the enterprise rates
不满意, the manager works the follow-up to its answer, the enterprise rates the follow-up, and
the manager downloads the month's workbook, which the test reads back. Screenshots of the inbox
and the case at 1280×800 and 390×844 go to $QIBOT_SCREENSHOT_DIR when it is set.

Skips with the reason when no Chromium is installed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from sqlalchemy import select

from bot.channels.telegram.render import notification_text
from bot.config import load_settings
from bot.console.context import CONSOLE
from bot.notify.base import Notification
from bot.runtime import Runtime
from bot.services import cases
from bot.services.demo import load_demo
from bot.services.enterprises import enterprise_for
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Enterprise, Outbox
from intents.classifier import Nlu
from tests.channels.wechat.wechat_helpers import WeChatServers, wechat_environ
from tests.helpers.browser import SCREENS, Site, chromium, expect, free_port, say, screenshot
from tests.helpers.clock import Clock
from tests.helpers.console import PASSWORD, add_accounts
from tests.helpers.fakes.wechat_server import FakeWeChat


@pytest.fixture
async def site(tmp_path: Path, nlu: Nlu, knowledge: KnowledgeService) -> AsyncIterator[Site]:
    async for running in _site(tmp_path, nlu, knowledge, {}):
        yield running


@pytest.fixture
async def wechat_site(tmp_path: Path, nlu: Nlu, knowledge: KnowledgeService) -> AsyncIterator[tuple[Site, Any]]:
    """The same site with the WeChat channel on (safe mode), talking to the fake WeChat API."""
    fake = FakeWeChat()
    api = TestServer(fake.app(), host="127.0.0.1")
    await api.start_server()
    try:
        async for running in _site(tmp_path, nlu, knowledge, wechat_environ(fake, str(api.make_url("")))):
            yield running, fake
    finally:
        await api.close()


async def _site(tmp_path: Path, nlu: Nlu, knowledge: KnowledgeService, environ: dict[str, str]
                ) -> AsyncIterator[Site]:
    port = free_port()
    settings = load_settings(environ={"QIBOT_DATA_DIR": str(tmp_path / "data"),
                                      "QIBOT_PUBLIC_URL": f"http://127.0.0.1:{port}", **environ})
    clock = Clock()
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    runtime.dialogue.clock = clock
    runtime.dispatcher.clock = clock
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    await add_accounts(runtime)
    running = Site(runtime, settings, clock)
    running.port = port
    await running.start()
    assert running.server is not None
    running.server.app[CONSOLE].poll_seconds = 0.3
    yield running
    await running.stop()
    await runtime.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def new_page(browser: Any, screen: str) -> Any:
    context = await browser.new_context(locale="zh-CN", **SCREENS[screen])
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def open_case_for_visitor(site: Site, channel: str = "webchat") -> str:
    """The visitor's demand, as its intake would have opened it (思明区, metrology: wang's)."""
    async with transaction(site.runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity).where(ChannelIdentity.channel == channel))
                    ).scalar_one()
        enterprise = await enterprise_for(session, identity)
        enterprise.name, enterprise.mobile = "厦门示例计量有限公司", "13712345678"
        case = await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                                     description="加油机需要校准，共4台", mode="onsite", district="思明区",
                                     now=site.clock())
        return case.number


async def other_case(site: Site, description: str) -> str:
    """Another enterprise's demand in wang's site and skill, opened meanwhile."""
    async with transaction(site.runtime.sessions) as session:
        enterprise = Enterprise(name="厦门另一示例公司", district="思明区", mobile="13800001111")
        session.add(enterprise)
        await session.flush()
        case = await cases.open_case(session, enterprise=enterprise, identity=None, domain="metrology",
                                     description=description, mode="online", district="思明区", now=site.clock())
        return case.number


async def notification_link(site: Site, number: str) -> str:
    """The link Telegram and WeCom add to the commissioner's new-case notification (the outbox row
    names the case; the messenger renders it with the public URL)."""
    async with transaction(site.runtime.sessions) as session:
        rows = (await session.execute(select(Outbox.payload).where(Outbox.channel == "console",
                                                                   Outbox.kind == "case_assigned"))).scalars().all()
    assert [p["commissioner"] for p in rows if p.get("case") == number] == ["wang"]
    text = notification_text(Notification(1, "telegram", "1", "case_assigned", rows[0]), personal=False,
                             public_url=site.settings.public_url)
    found = re.search(r"https?://\S+", text)
    assert found is not None, text
    return found.group(0)


async def sign_in(page: Any, login: str) -> None:
    await page.locator("form[action='/console/login'] input[name=login]").fill(login)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()


async def test_a_commissioner_handles_a_case_from_the_notification_to_its_resolution(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    enterprise = await new_page(browser, "phone")
    await enterprise.goto(site.url)
    await enterprise.locator(".msg--welcome").wait_for()
    await say(enterprise, "你好")  # the visitor's identity exists once it has written
    number = await open_case_for_visitor(site)
    link = await notification_link(site, number)
    assert link.endswith(f"/console/cases/{number}")

    staff = await new_page(browser, "desktop")
    await staff.goto(link)
    await staff.wait_for_url(re.compile(r"/console/login"))
    await sign_in(staff, "wang")
    await staff.wait_for_url(re.compile(f"/console/cases/{number}$"))
    await expect(staff.locator("#case-status")).to_have_text("待受理")
    assert "137****5678" in await staff.locator(".profile").inner_text()  # masked by default

    await staff.keyboard.press("a")  # the shortcut for 受理
    await staff.wait_for_url(re.compile(r"done=accept"))
    await expect(staff.locator("#case-status")).to_have_text("办理中")
    await staff.keyboard.press("r")
    await expect(staff.locator("#reply-text")).to_be_focused()
    await staff.select_option("#canned", label="预约上门时间")
    assert "方便的时间" in await staff.input_value("#reply-text")
    await staff.fill("#reply-text", "您好，我们明天上午上门校准，请问方便吗？")
    await staff.keyboard.press("Control+Enter")
    await staff.wait_for_url(re.compile(r"done=reply"))

    await expect(staff.locator("#conversation .delivery").last).to_have_text("等待发送")
    await site.deliver()  # the outbox dispatcher pushes the reply to the open web chat
    await enterprise.locator(".msg--in .msg__bubble", has_text="明天上午上门校准").wait_for()
    await expect(staff.locator("#conversation .delivery").last).to_have_text("已送达")

    await staff.evaluate("window.__notReloaded = true")
    await say(enterprise, "方便，上午9点以后都可以")
    answer = staff.locator("#conversation .chat__msg--in", has_text="上午9点以后都可以")
    await answer.wait_for()  # arrived through the event stream
    assert await staff.evaluate("window.__notReloaded === true")
    await screenshot(staff, "console-case-desktop")

    await staff.keyboard.press("s")
    await staff.fill("#resolve-text", "已上门完成4台加油机校准，证书已出具")
    await staff.get_by_role("button", name="办结并请企业评价").click()
    await staff.wait_for_url(re.compile(r"done=resolve"))
    await expect(staff.locator("#case-status")).to_have_text("已办结待评价")
    await site.deliver()
    await enterprise.locator(".msg--in .msg__bubble", has_text="证书已出具").wait_for()

    await staff.goto(site.url + "console/")
    await expect(staff).to_have_title(re.compile(r"^工作台"))  # nothing waits for wang
    await staff.evaluate("window.__notReloaded = true")
    others = [await other_case(site, "电子秤需要强制检定"), await other_case(site, "压力表校准")]
    for number_ in others:  # new cases appear without a reload, counted in the tab title
        await staff.locator("#live .case-row__number", has_text=number_).first.wait_for()
    await expect(staff).to_have_title(re.compile(r"^\(2\) 工作台"))
    assert await staff.evaluate("window.__notReloaded === true")
    await screenshot(staff, "console-inbox-desktop")

    phone = await new_page(browser, "phone")
    await phone.goto(link)
    await sign_in(phone, "chen")
    await phone.wait_for_url(re.compile(f"/console/cases/{number}$"))
    await screenshot(phone, "console-case-phone", full_page=True)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the case page scrolls sideways on a phone ({width}px)"
    await phone.goto(site.url + "console/")
    await screenshot(phone, "console-inbox-phone", full_page=True)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390

    # The enterprise rates the service 不满意: a follow-up opens, which the manager works in the
    # browser to its end; the enterprise rates the follow-up; the month's workbook counts the case.
    await enterprise.get_by_role("button", name="2 不满意", exact=True).click()
    await enterprise.locator(".msg--in .msg__bubble", has_text="请主管回访").wait_for()
    await say(enterprise, "上门时间改了两次，等了很久")
    manager = await new_page(browser, "desktop")
    await manager.goto(site.url + "console/manage/followups")
    await sign_in(manager, "boss")
    await manager.wait_for_url(re.compile(r"/console/manage/followups$"))
    await manager.get_by_role("link", name=number).click()
    for step, button in (("已电话回访，企业反映上门时间两次改期", "记录回访"),
                         ("核实派单记录，确有两次改期", "记录核实"),
                         ("已提醒专员按约上门，改期须提前一天告知", "记录处理"),
                         ("您好，经核实确有两次改期，我们已要求专员按约上门并提前告知变动。", "发送答复")):
        await manager.fill("#note", step)
        await manager.get_by_role("button", name=button).click()
        await manager.locator("ol.steps", has_text=step).wait_for()
    await site.deliver()  # the answer goes to the enterprise's channel with a request to rate it
    await enterprise.locator(".msg--in .msg__bubble", has_text="确有两次改期").wait_for()
    await say(enterprise, "4")
    await enterprise.locator(".msg--in .msg__bubble", has_text="回访处理结果的评价").wait_for()
    await manager.reload()
    assert "企业对回访的评价：满意" in await manager.locator("ol.steps").inner_text()

    month = site.clock().astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    await manager.goto(f"{site.url}console/manage/?month={month}")
    async with manager.expect_download() as downloading:
        await manager.get_by_role("link", name=re.compile("月报")).click()
    saved = tmp_path / f"report-{month}.xlsx"
    await (await downloading.value).save_as(saved)
    book = load_workbook(saved)
    figures = {row[0]: row[1] for row in book["月报"].iter_rows(values_only=True) if row and row[0]}
    assert figures["新增需求"] >= 3 and figures["办结"] >= 1, figures
    assert "13712345678" not in str([list(ws.values) for ws in book.worksheets])  # masked in the export


async def test_an_answer_sent_in_wechat_appears_live_on_the_case_page(
    wechat_site: tuple[Site, Any], browser: Any
) -> None:
    """The enterprise is in WeChat (the fake, with wechatpy's crypto as the client): the
    commissioner's reply reaches it through the customer-service API, and its answer appears on
    the open case page without a reload."""
    site, fake = wechat_site
    assert site.server is not None
    client = TestClient(site.server)
    await client.start_server()
    wechat = WeChatServers(client, fake.app_id)
    openid = wechat.user()
    # WeChat's 48-hour reply window is checked against the real time (the notifier's clock):
    # the site's clock starts there instead of at the fixed test moment.
    site.clock.now = datetime.now(UTC)
    try:
        assert await wechat.say(openid, "你好") is not None
        number = await open_case_for_visitor(site, channel="wechat")
        staff = await new_page(browser, "desktop")
        await staff.goto(f"{site.url}console/cases/{number}")
        await sign_in(staff, "wang")
        await staff.wait_for_url(re.compile(f"/console/cases/{number}$"))
        await staff.keyboard.press("a")
        await staff.wait_for_url(re.compile(r"done=accept"))
        await staff.keyboard.press("r")
        await staff.fill("#reply-text", "您好，明天上午上门校准，请问方便吗？")
        await staff.keyboard.press("Control+Enter")
        await staff.wait_for_url(re.compile(r"done=reply"))
        await site.deliver()
        assert any("明天上午上门校准" in text for text in fake.texts_to(openid))
        await expect(staff.locator("#conversation .delivery").last).to_have_text("已送达")

        await staff.evaluate("window.__notReloaded = true")
        await wechat.say(openid, "方便，上午9点以后都可以")
        await staff.locator("#conversation .chat__msg--in", has_text="上午9点以后都可以").wait_for()
        assert await staff.evaluate("window.__notReloaded === true")
    finally:
        await client.close()
