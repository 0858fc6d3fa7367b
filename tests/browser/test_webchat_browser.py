"""The web chat in a real Chromium, on a phone (390×844) and a desktop (1280×800): what a visitor
sees and clicks. "Seen" means inside the viewport (Playwright's in-viewport check, or the text's
own box inside the scrolling log), not merely present in the page. Screenshots of each moment go
to $QIBOT_SCREENSHOT_DIR (when it is set) for a person to look at.

Skips with the reason when no Chromium is installed (``.ci/run`` installs it, and there the test
must run). One Chromium serves the module (launching it per test was most of the module's time);
each test gets a new browser context (its own cookies, storage and page), so tests share nothing
a page can see. The tests and their fixtures run on the module's event loop, which the browser
connection belongs to."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.config import load_settings
from bot.runtime import Runtime
from bot.services import complaints
from bot.services.demo import load_demo
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.helpers.browser import SCREENS, Site, bot_count, chromium, expect, say, screenshot
from tests.helpers.clock import Clock

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_CHARS = 1800  # not the default: the page must take it from the server
CONTACT = "0592-5550000（示例，工作日 8:30–17:30）"
CREDIT_CODE = "91110000802100433B"


@pytest.fixture(params=list(SCREENS))
def screen(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="module")
async def site(tmp_path: Path, nlu: Nlu, knowledge: KnowledgeService) -> AsyncIterator[Site]:
    settings = load_settings(environ={
        "QIBOT_DATA_DIR": str(tmp_path / "data"),
        "QIBOT_MAX_MESSAGE_CHARS": str(MAX_CHARS),
        "QIBOT_OPERATOR_CONTACT": CONTACT,
    })
    clock = Clock()  # a Wednesday, 10:00 in Xiamen: commissioners are on duty
    runtime = await Runtime.start(settings, nlu=nlu, knowledge=knowledge)
    runtime.dialogue.clock = clock
    runtime.dispatcher.clock = clock
    async with transaction(runtime.sessions) as session:
        await load_demo(session)
    running = Site(runtime, settings, clock)
    await running.start()
    yield running
    await running.stop()
    await runtime.close()


@dataclass
class Visit:
    page: Any
    site: Site
    screen: str

    async def shot(self, name: str) -> Path | None:
        return await screenshot(self.page, f"{name}-{self.screen}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """The module's one Chromium (each test opens its own context in it)."""
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def visit(browser: Any, site: Site, screen: str) -> AsyncIterator[Visit]:
    context = await browser.new_context(locale="zh-CN", **SCREENS[screen])
    try:
        page = await context.new_page()
        page.set_default_timeout(15_000)
        await page.goto(site.url)
        await page.locator(".msg--welcome").wait_for()
        yield Visit(page, site, screen)
    finally:
        await context.close()


# --- what the visitor does and sees -----------------------------------------------------------

async def tap(page: Any, name: str) -> None:
    before = await bot_count(page)
    button = page.locator("#choices button", has_text=name).first
    await expect(button).to_be_in_viewport()
    await button.click()
    await page.wait_for_function("([b]) => document.querySelectorAll('#log .msg--in').length > b", arg=[before])


async def last_bot_text(page: Any) -> str:
    return str(await page.locator("#log .msg--in .msg__bubble").last.inner_text())


TEXT_IN_VIEW = """(needle) => {
  const log = document.getElementById('log');
  const walker = document.createTreeWalker(log, NodeFilter.SHOW_TEXT);
  let node, found = null;
  while ((node = walker.nextNode())) if (node.data.includes(needle)) found = node;
  if (!found) return 'missing';
  const range = document.createRange();
  const at = found.data.lastIndexOf(needle);
  range.setStart(found, at);
  range.setEnd(found, at + needle.length);
  const r = range.getBoundingClientRect(), box = log.getBoundingClientRect();
  const inside = r.top >= box.top - 1 && r.bottom <= box.bottom + 1 && r.top >= 0 && r.bottom <= innerHeight;
  return inside ? 'visible'
    : `off screen: text ${r.top}-${r.bottom}, log ${box.top}-${box.bottom}, window ${innerHeight}`;
}"""


async def assert_text_in_view(page: Any, needle: str) -> None:
    """The newest occurrence of ``needle`` is itself on screen, inside the log's visible box."""
    state = ""
    for _ in range(20):  # scrolling settles within a frame or two
        state = await page.evaluate(TEXT_IN_VIEW, needle)
        if state == "visible":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r}: {state}")


async def assert_follows(page: Any) -> None:
    """The newest message and the whole input box are on screen; only the log scrolls."""
    await expect(page.locator("#log > li").last).to_be_in_viewport()
    await expect(page.locator("#text")).to_be_in_viewport(ratio=1)
    await expect(page.locator("#send")).to_be_in_viewport(ratio=1)
    layout = await page.evaluate("""() => ({
        page: document.scrollingElement.scrollHeight - innerHeight, y: scrollY,
        composer: document.getElementById('composer').getBoundingClientRect().bottom})""")
    assert layout["page"] <= 1 and layout["y"] == 0, layout  # the page itself never scrolls
    assert layout["composer"] <= page.viewport_size["height"] + 1, layout


async def user_texts(page: Any) -> list[str]:
    return [str(t) for t in await page.locator("#log .msg--out .msg__bubble").all_inner_texts()]


async def walk_intake(page: Any) -> None:
    """Answer the intake's questions as a visitor would, tapping the buttons it offers."""
    answers = [("全称", "厦门示例计量有限公司"), ("信用代码", CREDIT_CODE), ("怎么称呼", "周经理"),
               ("手机", "13712345678"), ("联系电话", "13712345678"), ("哪个区", "湖里区"),
               ("描述", "加油机需要校准，共4台")]
    for _ in range(15):
        text = await last_bot_text(page)
        if "需求编号" in text:
            return
        if "核对" in text:
            await tap(page, "确认")
            continue
        if "哪方面的服务" in text:
            button = page.locator("#choices button", has_text="计量").first
            assert re.fullmatch(r"1\s*计量", (await button.inner_text()).strip())  # the label, with its number
            await tap(page, "计量")
            continue
        if "方式" in text:
            assert await page.locator("#choices button", has_text="上门服务").count() == 1
            await tap(page, "线上服务")
            continue
        reply = next((answer for key, answer in answers if key in text), None)
        assert reply is not None, f"unexpected question: {text}"
        await say(page, reply)
    raise AssertionError("the intake did not end with a case number")


# --- the tests --------------------------------------------------------------------------------

async def test_the_welcome_shows_who_runs_the_service_and_is_no_message_of_the_visitor(visit: Visit) -> None:
    page = visit.page
    welcome = page.locator(".msg--welcome")
    await expect(welcome).to_be_in_viewport()
    assert "质量基础设施" in await welcome.inner_text()
    settings = visit.site.settings
    await expect(welcome.get_by_text("服务提供：" + settings.operator_name)).to_be_in_viewport()
    await expect(welcome.get_by_text(CONTACT, exact=False)).to_be_in_viewport()
    privacy = welcome.get_by_role("link", name="隐私政策")
    await expect(privacy).to_be_in_viewport()
    assert await privacy.get_attribute("href") == settings.privacy_url
    notice = await page.request.get(visit.site.url.rstrip("/") + settings.privacy_url)
    assert notice.status == 200 and "个人信息" in await notice.text()

    # the welcome's choices are buttons; nothing was sent in the visitor's name
    await expect(page.get_by_role("button", name="我的需求进度")).to_be_in_viewport()
    assert await user_texts(page) == []
    assert await page.locator("#log > li").count() == 1

    # the text box takes what the server accepts, no more
    assert await page.get_attribute("#text", "maxlength") == str(MAX_CHARS)
    await page.fill("#text", "检" * (MAX_CHARS + 50))
    assert len(await page.input_value("#text")) == MAX_CHARS
    await page.fill("#text", "")

    # a favicon, shipped with the page
    icon = await page.get_attribute("link[rel=icon]", "href")
    response = await page.request.get(visit.site.url.rstrip("/") + icon)
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    await visit.shot("welcome")

    await page.get_by_role("button", name="我的需求进度").click()
    await page.locator(".msg--in .msg__bubble", has_text="还没有提交过").wait_for()
    await page.reload()
    await page.locator(".msg--out").first.wait_for()
    assert await user_texts(page) == ["我的需求进度"]  # the first message is the one the visitor sent
    await expect(page.locator(".msg--welcome")).to_have_count(1)


async def test_the_page_follows_the_conversation_and_reopens_at_the_newest_message(visit: Visit) -> None:
    page = visit.page
    questions = ["电子秤要不要强制检定？", "CCC认证找谁办", "外观设计专利保护几年？", "企业标准怎么备案？"]
    for question in questions:
        await say(page, question)
        await assert_follows(page)
    assert await page.evaluate("document.getElementById('log').scrollTop") > 0  # the log scrolled, not the page
    await visit.shot("question")

    newest = (await last_bot_text(page)).splitlines()[0][:12]
    await page.reload()
    await page.locator(".msg--out").first.wait_for()
    await assert_text_in_view(page, newest)
    await assert_follows(page)
    await visit.shot("reload")
    assert await user_texts(page) == questions


async def test_after_confirming_a_demand_its_case_number_is_on_screen(visit: Visit) -> None:
    page = visit.page
    await say(page, "电子秤要不要强制检定？")  # some history above, so the log must scroll
    await say(page, "我要办理 加油机需要校准")
    await walk_intake(page)
    await assert_text_in_view(page, "QI-2026-000001")
    await expect(page.locator("#text")).to_be_in_viewport(ratio=1)
    await visit.shot("case")

    await page.reload()
    await page.locator(".msg--out").first.wait_for()
    await assert_text_in_view(page, "QI-2026-000001")


async def test_choice_buttons_say_what_they_choose_and_survive_a_reload(visit: Visit) -> None:
    page = visit.page
    await say(page, "我要办理")
    if "哪方面的服务" not in await last_bot_text(page):
        pytest.fail(f"expected the domain question, got {await last_bot_text(page)!r}")
    buttons = page.locator("#choices button")
    labels = [re.sub(r"\s+", " ", t).strip() for t in await buttons.all_inner_texts()]
    assert len(labels) == 7 and labels[0].startswith("1") and "计量" in labels[0], labels
    assert all(re.fullmatch(r"\d\s*\S.*", label) and len(label) > 2 for label in labels), labels  # not just 1 2 3
    for i in range(7):
        await expect(buttons.nth(i)).to_be_in_viewport()
    await visit.shot("choices")

    await page.reload()
    await page.locator(".msg--out").first.wait_for()
    after = [re.sub(r"\s+", " ", t).strip() for t in await page.locator("#choices button").all_inner_texts()]
    assert after == labels
    await tap(page, "标准")  # a tap sends the number
    assert (await user_texts(page))[-1] == "2"


async def test_a_rating_request_comes_with_buttons_that_survive_a_reload(visit: Visit) -> None:
    page, site = visit.page, visit.site
    await say(page, "你好")
    number = await site.open_case()
    await site.staff("wang", "accept", number)
    await site.staff("wang", "resolve", number, "已完成检定，证书已出具")
    await site.deliver()
    request = page.locator(".msg--rating")
    await expect(request).to_be_in_viewport()
    names = ["5 非常满意", "4 满意", "3 基本满意", "2 不满意", "1 非常不满意"]
    for name in names:
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_in_viewport()
    await visit.shot("rating")

    await page.reload()
    await page.locator(".msg--rating").wait_for()
    for name in names:
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_in_viewport()
    before = await bot_count(page)
    await page.get_by_role("button", name="5 非常满意", exact=True).click()
    await page.wait_for_function("([b]) => document.querySelectorAll('#log .msg--in').length > b", arg=[before])
    assert "5 分" in await last_bot_text(page)


async def test_notices_replies_and_complaint_answers_keep_their_own_styles(visit: Visit) -> None:
    page, site = visit.page, visit.site
    await say(page, "你好")
    number = await site.open_case()
    await site.staff("wang", "accept", number)
    await site.staff("wang", "reply", number, "明天上午上门检定，请安排人员配合")
    async with transaction(site.runtime.sessions) as session:
        identity = await site.visitor(session)
        complaint = await complaints.file_complaint(session, identity=identity, enterprise=None,
                                                    text="专员迟到了", case=None, now=site.clock())
        number_ts = complaint.number
    async with transaction(site.runtime.sessions) as session:
        await complaints.reply_complaint(session, number_ts, "已核实并批评教育，向您致歉", "management", site.clock())
    await site.deliver()

    expected = [("msg--status", "已由王专员受理", "进度通知"), ("msg--person", "明天上午上门检定", "服务专员"),
                ("msg--complaint", "已核实并批评教育", "投诉回复")]

    async def check() -> None:
        for css, text, tag in expected:
            item = page.locator(f"#log li.{css}", has_text=text)
            await expect(item).to_have_count(1)
            await expect(item.locator(".msg__tag")).to_have_text(tag)
        styles = await page.evaluate("""() => ['status', 'person', 'complaint'].map(k => {
            const b = document.querySelector('#log .msg--' + k + ' .msg__bubble');
            const s = getComputedStyle(b);
            return [s.backgroundColor, s.borderLeftColor, s.borderLeftWidth].join(' ');
        })""")
        assert len(set(styles)) == 3, styles  # three looks, not one
        await expect(page.locator("#log li.msg--complaint")).to_be_in_viewport()

    await check()
    await visit.shot("notices")
    await page.reload()
    await page.locator("#log li.msg--complaint").wait_for()
    await check()


async def test_a_live_handoff_shows_who_is_connected_acknowledges_and_ends(visit: Visit) -> None:
    page, site = visit.page, visit.site
    await say(page, "你好")
    number = await site.open_case()  # the open case's assignee takes the handoff: 王专员
    await say(page, "转人工")
    bar = page.locator("#live")
    for _ in range(3):  # the bot may first ask for a mobile number, or one line about what it is for
        if await bar.is_visible():
            break
        asked = await last_bot_text(page)
        await say(page, "13712345678" if "手机" in asked else "加油机校准的事，想问下进度")
    await expect(bar).to_be_in_viewport()
    await expect(bar).to_contain_text("已接通 王专员")
    await expect(bar).to_contain_text(number)
    await expect(page.locator("#log .msg--event", has_text="已接通 王专员")).to_be_in_viewport()

    await say(page, "请问明天什么时候上门？")
    ack = page.locator("#log .msg--out").last.locator(".msg__meta")
    await expect(ack).to_have_text("✓ 已送达 王专员")
    await expect(ack).to_be_in_viewport()

    await site.staff("wang", "reply", number, "明天上午九点到，请准备好加油机的出厂编号")
    await site.deliver()
    reply = page.locator("#log .msg--person", has_text="九点")
    await expect(reply).to_be_in_viewport()
    await expect(page.locator("#text")).to_be_in_viewport(ratio=1)
    await visit.shot("live")

    await page.reload()  # still connected after a reload
    await expect(page.locator("#live")).to_contain_text("已接通 王专员")
    await expect(page.locator("#log .msg--person", has_text="九点")).to_be_in_viewport()

    await site.staff("wang", "end_live", number)
    await site.deliver()
    await expect(page.locator("#log .msg--event", has_text="人工服务已结束")).to_be_in_viewport()
    await expect(page.locator("#live")).to_be_hidden()
    await visit.shot("live-ended")


async def test_a_restart_shows_a_banner_and_a_message_typed_meanwhile_is_sent_once_it_is_back(visit: Visit) -> None:
    page, site = visit.page, visit.site
    await say(page, "你好")
    banner = page.locator("#banner")
    await expect(banner).to_be_hidden()

    answers = await bot_count(page)
    await site.stop()
    await expect(banner).to_be_visible(timeout=5000)
    await expect(banner).to_have_text("连接已断开，正在重连…")
    await expect(banner).to_be_in_viewport()
    await page.fill("#text", "CCC认证找谁办")
    await page.keyboard.press("Enter")
    waiting = page.locator("#log .msg--out").last.locator(".msg__meta")
    await expect(waiting).to_contain_text("恢复后自动发送", timeout=5000)
    await visit.shot("reconnecting")
    await asyncio.sleep(3)  # down a while: the page has backed off by now

    await site.start()
    back = time.monotonic()
    await page.wait_for_function("([n]) => document.querySelectorAll('#log .msg--in').length > n", arg=[answers],
                                 timeout=8000)
    assert time.monotonic() - back < 5, "the waiting message went out late"
    await expect(banner).to_be_hidden()
    await expect(waiting).to_have_count(0)
    assert await user_texts(page) == ["你好", "CCC认证找谁办"]  # sent once
    assert await bot_count(page) == answers + 1  # answered once
    await assert_follows(page)


async def test_text_from_the_user_is_never_rendered_as_html(visit: Visit) -> None:
    page = visit.page
    await say(page, "<img src=x onerror=\"document.title='pwned'\">")
    assert await page.title() != "pwned"
    assert await page.locator(".chat__log img").count() == 0
