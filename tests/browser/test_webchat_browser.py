"""The web chat in a real Chromium: what a visitor sees and clicks. Skips with the reason when
no Chromium is installed (``.ci/run`` installs it, and there the test must run)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.runtime import Runtime

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def page(runtime: Runtime) -> AsyncIterator[object]:
    if not shutil.which(CHROMIUM):
        reason = f"Chromium not found at {CHROMIUM}"
        if os.environ.get("TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    playwright_api = pytest.importorskip("playwright.async_api")
    server = TestServer(create_app(runtime.settings, runtime), host="127.0.0.1")
    await server.start_server()
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 420, "height": 860}, locale="zh-CN")
        tab = await context.new_page()
        await tab.goto(str(server.make_url("/")))
        tab.set_default_timeout(15_000)
        yield tab
        await browser.close()
    await server.close()


async def test_a_visitor_is_welcomed_asks_a_question_and_starts_a_demand(page) -> None:
    bot_bubbles = page.locator(".msg--in .msg__bubble")
    await bot_bubbles.first.wait_for()
    assert "质量基础设施" in await bot_bubbles.first.inner_text()
    assert await bot_bubbles.count() == 1  # welcomed once, also after the socket connects

    await page.get_by_role("button", name="我的需求进度").click()  # the welcome's choices are buttons
    await page.locator(".msg--in .msg__bubble", has_text="还没有提交过").wait_for()

    await page.fill("#text", "外观设计专利保护几年？")
    await page.keyboard.press("Enter")
    await page.locator(".msg--in .msg__bubble", has_text="依据").wait_for()
    answer = await bot_bubbles.last.inner_text()
    assert "15" in answer and "专利" in answer

    # "我要办理" right after an answer starts a demand in that answer's domain
    await page.fill("#text", "我要办理")
    await page.keyboard.press("Enter")
    await page.locator(".msg--in .msg__bubble", has_text="全称").wait_for()
    assert "知识产权" in "".join([await b.inner_text() for b in await bot_bubbles.all()][-2:])
    user_bubbles = page.locator(".msg--out .msg__bubble")
    assert [await b.inner_text() for b in await user_bubbles.all()] == [
        "你好", "我的需求进度", "外观设计专利保护几年？", "我要办理"]


async def test_the_conversation_is_still_there_after_a_reload(page) -> None:
    await page.locator(".msg--in .msg__bubble").first.wait_for()
    await page.fill("#text", "CCC认证找谁办")
    await page.keyboard.press("Enter")
    await page.locator(".msg--out .msg__bubble", has_text="CCC认证找谁办").wait_for()
    await page.locator(".msg--in .msg__bubble").nth(1).wait_for()
    await page.reload()
    await page.locator(".msg--out .msg__bubble", has_text="CCC认证找谁办").wait_for()
    assert await page.locator(".msg--out .msg__bubble").count() == 2  # 你好 and the question, nothing resent


async def test_text_from_the_user_is_never_rendered_as_html(page) -> None:
    await page.locator(".msg--in .msg__bubble").first.wait_for()
    await page.fill("#text", "<img src=x onerror=\"document.title='pwned'\">")
    await page.keyboard.press("Enter")
    await page.locator(".msg--in .msg__bubble").nth(1).wait_for()
    assert await page.title() != "pwned"
    assert await page.locator(".chat__log img").count() == 0
