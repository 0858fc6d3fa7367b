"""The console's knowledge pages in a real Chromium, at 1280×800 and 390×844: a manager searches
with a user's question, opens the entry, edits its answer, previews the card with the lint result
and publishes; every page fits the screen. Screenshots go to $QIBOT_SCREENSHOT_DIR, when it is
set, for a person to look at."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.config import Settings
from bot.services import staff_accounts
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.helpers.browser import SCREENS, chromium, free_port, screenshot
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock
from tests.helpers.console import PASSWORD
from tests.helpers.knowledge import own_knowledge
from tests.helpers.runtime import start_runtime

NO_OVERFLOW = "() => document.scrollingElement.scrollWidth <= window.innerWidth + 1"
ENTRY = "branding.china-brand-day"
QUESTION = "中国品牌日是哪一天"


@pytest.fixture
def knowledge(knowledge: KnowledgeService) -> KnowledgeService:
    """This test's own: publishing changes it."""
    return own_knowledge(knowledge)


async def _sign_in(page: Any, base: str) -> None:
    await page.goto(f"{base}/console/login")
    await page.locator("form[action='/console/login'] input[name=login]").fill("mgr")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(lambda url: "/console/login" not in url)


async def test_a_manager_searches_edits_previews_and_publishes_on_a_desktop_and_a_phone(
    settings: Settings, nlu: Nlu, knowledge: KnowledgeService
) -> None:
    runtime = await start_runtime(settings, nlu, knowledge, Clock())
    async with transaction(runtime.sessions) as session:
        await staff_accounts.add(session, login="mgr", display_name="周经理", role="manager", password=PASSWORD,
                                 commissioner=None, now=runtime.now())
    server = TestServer(create_app(settings, runtime), host="127.0.0.1", port=free_port())
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with chromium() as browser:
            for screen, settings_of_screen in SCREENS.items():
                context = await browser.new_context(locale="zh-CN", **settings_of_screen)
                page = await context.new_page()
                page.set_default_timeout(15_000)
                await _sign_in(page, base)

                await page.goto(f"{base}/console/knowledge")
                await page.get_by_role("searchbox").fill(QUESTION)
                await page.get_by_role("button", name="搜索").click()
                answer = page.locator("section.kb-answer")
                await answer.wait_for()
                assert "直接回答" in await answer.inner_text()
                assert await page.evaluate(NO_OVERFLOW), f"the search page scrolls sideways ({screen})"
                await screenshot(page, f"kb-search-{screen}", full_page=True)

                await answer.get_by_role("link", name=QUESTION).click()
                await page.get_by_role("link", name="修改").click()
                new_answer = f"每年5月10日是“中国品牌日”（{screen} 修订）。企业可借品牌日开展自主品牌宣传。"
                await page.locator("textarea[name=answer]").fill(new_answer)
                await page.get_by_role("button", name="预览并检查").click()
                preview = page.locator(".kb-bubble")
                await preview.wait_for()
                assert new_answer in await preview.inner_text()
                assert "没有错误" in await page.locator(".kb-verdict").inner_text()
                assert await page.evaluate(NO_OVERFLOW), f"the edit page scrolls sideways ({screen})"
                await screenshot(page, f"kb-edit-{screen}", full_page=True)
                await screenshot(page, f"kb-preview-landing-{screen}")  # what shows first

                # The check result is where a preview lands (on a phone, below the long form); it
                # has its own publish button.
                assert await page.evaluate("() => location.hash") == "#kb-result"
                await page.locator("#kb-check").get_by_role("button", name="发布").click()
                await page.wait_for_url(lambda url: f"/console/knowledge/entry/{ENTRY}?published=1" in url)
                assert "已保存并发布" in await page.locator("main").inner_text()
                assert await page.evaluate(NO_OVERFLOW), f"the entry page scrolls sideways ({screen})"
                await screenshot(page, f"kb-entry-{screen}", full_page=True)
                assert (await Chat(runtime, user=f"u-{screen}").say(QUESTION))[0].startswith(new_answer)
                await context.close()
    finally:
        await server.close()
        await runtime.close()
