"""The manager's dashboard in a real Chromium, on a phone (390×844) and a desktop (1280×800):
it fits the screen, its charts are drawn, a click on a bar opens the cases it counts, and a
follow-up can be worked with the form. Screenshots go to $QIBOT_SCREENSHOT_DIR (when it is
set) for a person to look at. Signed in through the console's sign-in page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.config import Settings
from bot.services import staff_accounts
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from intents.classifier import Nlu
from tests.helpers.browser import SCREENS, chromium, free_port, screenshot
from tests.helpers.clock import Clock
from tests.helpers.console import PASSWORD
from tests.helpers.managed import MONTH, NOW, Fixture, build_month
from tests.helpers.runtime import start_runtime

NO_OVERFLOW = "() => document.scrollingElement.scrollWidth <= window.innerWidth + 1"


@pytest.fixture(params=list(SCREENS))
def screen(request: pytest.FixtureRequest) -> str:
    return str(request.param)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """The module's one Chromium (each test opens its own context in it)."""
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def served(settings: Settings, nlu: Nlu, knowledge: KnowledgeService) -> AsyncIterator[tuple[str, Fixture]]:
    runtime = await start_runtime(settings, nlu, knowledge, Clock(NOW))
    fx = await build_month(runtime.sessions, runtime.policy)
    async with transaction(runtime.sessions) as session:
        await staff_accounts.add(session, login="mgr", display_name="周经理", role="manager", password=PASSWORD,
                                 commissioner=None, now=NOW)
    app = create_app(settings, runtime)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}", fx
    await server.close()
    await runtime.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any, served: tuple[str, Fixture], screen: str) -> AsyncIterator[Any]:
    context = await browser.new_context(locale="zh-CN", **SCREENS[screen])
    try:
        found = await context.new_page()
        found.set_default_timeout(15_000)
        await found.goto(f"{served[0]}/console/login")  # signed in as a manager would, through the form
        await found.locator("form[action='/console/login'] input[name=login]").fill("mgr")
        await found.locator("input[name=password]").fill(PASSWORD)
        await found.get_by_role("button", name="登录").click()
        await found.wait_for_url(lambda url: "/console/login" not in url)
        yield found
    finally:
        await context.close()


async def test_the_dashboard_fits_the_screen_and_a_bar_opens_its_cases(
    page: Any, served: tuple[str, Fixture], screen: str
) -> None:
    base, fx = served
    await page.goto(f"{base}/console/manage/?month={MONTH}")
    await page.locator("svg.chart").first.wait_for()
    assert await page.locator("svg.chart").count() == 3
    assert await page.evaluate(NO_OVERFLOW), "the dashboard scrolls sideways"
    await screenshot(page, f"dashboard-{screen}")
    await screenshot(page, f"dashboard-full-{screen}", full_page=True)
    await page.locator('svg.chart a[href*="metric=level-1"]').click()
    await page.wait_for_url("**metric=level-1**")
    assert fx.numbers["C"] in await page.locator("table").inner_text()
    assert await page.evaluate(NO_OVERFLOW)
    await screenshot(page, f"drilldown-{screen}")


async def test_a_follow_up_is_worked_with_its_form(page: Any, served: tuple[str, Fixture], screen: str) -> None:
    base, fx = served
    await page.goto(f"{base}/console/manage/followups")
    await page.get_by_role("link", name=fx.numbers["C"]).click()
    await page.fill("#note", "已电话回访，企业反映受理慢")
    await page.get_by_role("button", name="记录回访").click()
    await page.get_by_role("button", name="记录核实").wait_for()
    assert "已电话回访，企业反映受理慢" in await page.locator("ol.steps").inner_text()
    assert await page.evaluate(NO_OVERFLOW)
    await screenshot(page, f"followup-{screen}", full_page=True)


ROW_LAYOUT = """() => [...document.querySelectorAll('table.cards tr')].filter(r => r.querySelector('td')).map(r => {
  const cells = [...r.querySelectorAll('td')].filter(c => c.offsetParent !== null);
  const tops = new Set(cells.map(c => c.getBoundingClientRect().top));
  return {first: cells[0].getBoundingClientRect().width, tops: tops.size};
})"""


@pytest.mark.parametrize("path", ["/console/manage/commissioners", "/console/manage/library"])
async def test_the_libraries_read_as_cards_on_a_phone_and_as_a_table_on_a_desktop(
    page: Any, served: tuple[str, Fixture], screen: str, path: str
) -> None:
    """Seven columns on a 390-pixel screen were a few characters wide each (a name broken over
    four lines): on a phone each person or institution is a card of labelled lines."""
    base, _ = served
    await page.goto(base + path)
    rows = await page.evaluate(ROW_LAYOUT)
    assert rows, "the library lists nobody"
    width = await page.evaluate("() => window.innerWidth")
    if screen == "phone":
        assert all(row["first"] > width * 0.6 and row["tops"] > 1 for row in rows)  # one line per field
        label = "() => getComputedStyle(document.querySelector('table.cards td[data-label]'), '::before').content"
        assert await page.evaluate(label) == '"领域："'  # each line says what it is
    else:
        assert all(row["tops"] == 1 for row in rows)  # every field of a row on one line: a table
    assert await page.evaluate(NO_OVERFLOW)
    await screenshot(page, f"library{path.rsplit('/', 1)[1]}-{screen}", full_page=True)
