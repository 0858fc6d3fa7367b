"""The inbox and the case page as a commissioner reads them: deadlines on the working calendar,
the count in the tab title, live change events, and the delivery state of each message sent."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bot.console.context import CONSOLE
from bot.runtime import Runtime
from bot.services import cases, identities
from bot.storage.db import transaction
from bot.storage.models import Enterprise
from tests.console.test_console_access import signed_in, siming_case
from tests.helpers.clock import Clock
from tests.helpers.console import form_token

Client = Any


def section(html: str, name: str) -> str:
    found = re.search(rf'id="{name}"(.*?)</section>', html, re.S)
    assert found, name
    return found.group(1)


async def test_cases_near_and_past_their_acceptance_deadline_are_listed_apart(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]], clock: Clock
) -> None:
    number = await siming_case(console_runtime)  # Wednesday 10:00: 4 working hours → 16:30 (lunch 12:00-14:30)
    chen = await signed_in(new_client, "chen")
    page = await (await chen.get("/console/")).text()
    assert number in section(page, "waiting") and number not in section(page, "overdue")
    assert "<title>(1) 工作台" in page and "16:30" in section(page, "waiting")
    clock.advance(hours=5, minutes=45)  # 15:45, within the last working hour (signed in again: idle)
    page = await (await (await signed_in(new_client, "chen")).get("/console/")).text()
    assert number in section(page, "due-soon") and number not in section(page, "overdue")
    clock.advance(minutes=46)  # 16:31
    page = await (await (await signed_in(new_client, "chen")).get("/console/")).text()
    assert number in section(page, "overdue") and number not in section(page, "due-soon")


async def test_a_case_outside_the_commissioners_skills_is_not_waiting_for_them(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    ip_case = await siming_case(console_runtime, domain="ip")  # 思明, but wang does metrology and testing
    metrology = await siming_case(console_runtime)
    wang_page = await (await (await signed_in(new_client, "wang")).get("/console/")).text()
    assert metrology in wang_page and ip_case not in wang_page


async def read_event(stream: Any) -> tuple[str, dict[str, Any]]:
    name = ""
    async with asyncio.timeout(10):
        while True:
            line = (await stream.content.readline()).decode().strip()
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name:
                return name, json.loads(line.removeprefix("data: "))


async def test_the_event_stream_tells_the_inbox_when_a_case_arrives(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    wang = await signed_in(new_client, "wang")
    wang.server.app[CONSOLE].poll_seconds = 0.05
    stream = await wang.get("/console/events")
    assert stream.headers["Content-Type"] == "text/event-stream"
    name, first = await read_event(stream)
    assert name == "change" and first["count"] == 0
    await siming_case(console_runtime)  # written by another process, say: only the database knows
    name, second = await read_event(stream)
    assert name == "change" and second["count"] == 1 and second["fingerprint"] != first["fingerprint"]
    stream.close()


async def test_the_case_page_shows_the_conversation_and_whether_each_reply_was_delivered(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]], clock: Clock
) -> None:
    async with transaction(console_runtime.sessions) as session:
        identity, _ = await identities.touch(session, "webchat", "visitor-1", clock())
        enterprise = Enterprise(name="厦门示例公司", district="思明区")
        session.add(enterprise)
        await session.flush()
        identity.enterprise_id = enterprise.id
        number = (await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                                        description="加油机校准", mode="online", district="思明区",
                                        now=clock())).number
    wang = await signed_in(new_client, "wang")
    token = await form_token(wang, f"/console/cases/{number}")
    await wang.post(f"/console/cases/{number}/act", data={"action": "reply", "text": "请问哪天方便？", "csrf": token})
    page = await (await wang.get(f"/console/cases/{number}")).text()
    assert re.search(r"请问哪天方便？</div>\s*<div class=\"chat__meta\">wang · 2026-11-25 10:00 · .*等待发送", page)
    clock.advance(seconds=1)
    await console_runtime.dispatcher.run_once()  # no page of the visitor is open: held
    page = await (await wang.get(f"/console/cases/{number}")).text()
    assert "待企业下次发消息时送达" in page
