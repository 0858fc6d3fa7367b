"""The knowledge base in the console, over real HTTP: who may read and who may edit; an edit
previewed as the user's answer card, checked by the linter and published, after which a chat user
gets the new answer; a broken entry refused with the typed text kept; a gap turned into an entry;
a second worker on the same PostgreSQL database serving the edit (by the Redis event, and by
polling alone)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from collections.abc import Awaitable, Callable
from html import unescape
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import staff_accounts
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import KbEdit, KbGap
from bot.storage.staff import StaffAudit
from intents.classifier import Nlu
from knowledge.overlay import form_from_entry
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock
from tests.helpers.console import PASSWORD, csrf_of, form_token, sign_in
from tests.helpers.knowledge import own_knowledge
from tests.helpers.services import REDIS_URL

Client = Any
ENTRY = "branding.china-brand-day"
QUESTION = "中国品牌日是哪一天"
NEW_ANSWER = "每年5月10日是“中国品牌日”，由国务院批复设立（控制台修订）。企业可借品牌日开展品牌宣传。"
_PREVIEWED = re.compile(r'name="previewed" value="([0-9a-f]*)"')


@pytest.fixture
def knowledge(knowledge: KnowledgeService) -> KnowledgeService:
    """A knowledge service of this test's own: edits change it (the session's one is shared)."""
    return own_knowledge(knowledge)


async def signed_in(new_client: Callable[[], Awaitable[Client]], login: str) -> Client:
    client = await new_client()
    response = await sign_in(client, login)
    assert response.status == 303, await response.text()
    return client


def edited_fields(runtime: Runtime, **changes: str) -> dict[str, str]:
    entry = runtime.knowledge.kb.get(ENTRY)
    assert entry is not None
    return {**form_from_entry(entry), "original": ENTRY, "based_on": "0", **changes}


async def preview(client: Client, fields: dict[str, str]) -> tuple[int, str, str]:
    """Post the form for a preview; the status, the page and the fingerprint to publish with."""
    token = await form_token(client, "/console/knowledge")
    response = await client.post("/console/knowledge/edit", data={**fields, "csrf": token, "action": "preview"})
    html = await response.text()
    found = _PREVIEWED.search(html)
    return response.status, html, found.group(1) if found else ""


async def publish(client: Client, fields: dict[str, str]) -> Any:
    status, html, fingerprint = await preview(client, fields)
    assert status == 200 and fingerprint, html
    token = csrf_of(html)
    return await client.post("/console/knowledge/edit", allow_redirects=False,
                             data={**fields, "csrf": token, "action": "publish", "previewed": fingerprint})


async def test_anonymous_go_to_sign_in_commissioners_read_only_managers_edit_and_csrf_is_checked(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    routes = [("GET", "/console/knowledge"), ("GET", "/console/knowledge/new"),
              ("GET", f"/console/knowledge/entry/{ENTRY}"), ("GET", f"/console/knowledge/entry/{ENTRY}/edit"),
              ("POST", "/console/knowledge/edit"), ("POST", f"/console/knowledge/entry/{ENTRY}/state")]
    anonymous = await new_client()
    for method, path in routes:
        response = await anonymous.request(method, path, data={"csrf": "x"}, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"].startswith("/console/login"), path

    wang = await signed_in(new_client, "wang")  # a commissioner: reads, searches, sees the card
    listing = await wang.get("/console/knowledge", params={"q": QUESTION})
    html = unescape(await listing.text())
    assert listing.status == 200 and "直接回答" in html and "每年5月10日" in html
    assert "新建条目" not in html
    entry = await wang.get(f"/console/knowledge/entry/{ENTRY}")
    assert entry.status == 200 and "依据：" in await entry.text() and "修改</a>" not in await entry.text()
    token = await form_token(wang, "/console/knowledge")
    for method, path in [r for r in routes[1:] if r[1] != f"/console/knowledge/entry/{ENTRY}"]:
        response = await wang.request(method, path, allow_redirects=False,
                                      data={**edited_fields(console_runtime, answer=NEW_ANSWER), "csrf": token,
                                            "action": "retire"})
        assert response.status == 403, (method, path, response.status)

    boss = await signed_in(new_client, "boss")
    for data in ({}, {"csrf": "0" * 64}):  # no token, a wrong one
        fields = {**edited_fields(console_runtime, answer=NEW_ANSWER), "action": "publish", **data}
        assert (await boss.post("/console/knowledge/edit", data=fields, allow_redirects=False)).status == 403
        response = await boss.post(f"/console/knowledge/entry/{ENTRY}/state", data={"action": "retire", **data},
                                   allow_redirects=False)
        assert response.status == 403
    async with transaction(console_runtime.sessions) as session:
        assert (await session.execute(select(KbEdit))).first() is None
    assert "每年5月10日是“中国品牌日”。" in (await Chat(console_runtime).say(QUESTION))[0]


async def test_an_edit_is_previewed_as_the_users_card_published_audited_and_answered_in_chat(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    chat = Chat(console_runtime)
    assert NEW_ANSWER not in (await chat.say(QUESTION))[0]
    boss = await signed_in(new_client, "boss")
    form = await boss.get(f"/console/knowledge/entry/{ENTRY}/edit")
    assert form.status == 200 and "没有错误" in await form.text()
    fields = edited_fields(console_runtime, answer=NEW_ANSWER)
    status, html, _ = await preview(boss, fields)
    card = unescape(html)
    assert status == 200 and f"{NEW_ANSWER}\n依据：《国务院关于同意设立" in card and "没有错误" in card
    assert NEW_ANSWER not in (await chat.as_user("other").say(QUESTION))[0]  # a preview publishes nothing

    response = await publish(boss, fields)
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == f"/console/knowledge/entry/{ENTRY}?published=1"
    page = unescape(await (await boss.get(response.headers["Location"])).text())
    assert "已保存并发布" in page and NEW_ANSWER in page and "控制台 · boss" in page

    replies = await chat.as_user("third").say(QUESTION)
    assert replies[0].startswith(NEW_ANSWER), replies
    async with transaction(console_runtime.sessions) as session:
        row = (await session.execute(select(StaffAudit).where(StaffAudit.action == "kb_publish"))).scalar_one()
    assert row.login == "boss" and row.detail.startswith(f"{ENTRY} v1：")

    # Retired, the entry answers nobody; restored, it answers again.
    token = csrf_of(page)
    retire = await boss.post(f"/console/knowledge/entry/{ENTRY}/state", allow_redirects=False,
                             data={"csrf": token, "action": "retire", "based_on": "1"})
    assert retire.status == 303
    assert NEW_ANSWER not in (await chat.as_user("fourth").say(QUESTION))[0]
    listing = await (await boss.get("/console/knowledge")).text()
    assert "已停用 1 条" in listing
    restore = await boss.post(f"/console/knowledge/entry/{ENTRY}/state", allow_redirects=False,
                              data={"csrf": token, "action": "restore", "based_on": "2"})
    assert restore.status == 303
    assert (await chat.as_user("fifth").say(QUESTION))[0].startswith(NEW_ANSWER)

    # Reverted, the content file's answer is served again; the edit row is gone.
    revert = await boss.post(f"/console/knowledge/entry/{ENTRY}/state", allow_redirects=False,
                             data={"csrf": token, "action": "revert", "based_on": "3"})
    assert revert.status == 303
    assert (await chat.as_user("sixth").say(QUESTION))[0].startswith("每年5月10日是“中国品牌日”。2017年")
    async with transaction(console_runtime.sessions) as session:
        assert (await session.execute(select(KbEdit))).first() is None
        actions = (await session.execute(select(StaffAudit.action).where(StaffAudit.action.like("kb_%")))).scalars()
        assert list(actions) == ["kb_publish", "kb_retire", "kb_restore", "kb_revert"]


async def test_a_broken_entry_is_refused_with_the_typed_text_kept_and_unpreviewed_changes_are_not_published(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    boss = await signed_in(new_client, "boss")
    typed = "只问一种说法的新问题"
    fields = {"id": "metrology.only-one-phrasing", "domain": "metrology", "title": "只有一种问法的条目",
              "questions": typed, "answer": "这是一条没有依据出处的回答。", "basis": "听说的", "tags": "测试",
              "checked": "2026-11-20", "original": "", "based_on": "0"}
    status, html, fingerprint = await preview(boss, fields)
    assert status == 200 and "须修改后才能发布" in html and fingerprint == ""  # the publish button stays off
    response = await boss.post("/console/knowledge/edit",
                               data={**fields, "csrf": csrf_of(html), "action": "publish", "previewed": "f" * 20})
    html = unescape(await response.text())
    assert response.status == 400 and "内容有错误，未发布" in html
    assert "只有 1 种问法，至少需要 4 种" in html and "依据没有写明《法律/标准》名称" in html
    assert f">{typed}</textarea>" in html and ">听说的</textarea>" in html  # nothing typed is lost

    # Content changed after its preview is shown again, not published.
    good = edited_fields(console_runtime, answer=NEW_ANSWER)
    status, html, fingerprint = await preview(boss, good)
    changed = {**good, "answer": NEW_ANSWER + "又改了一句。"}
    response = await boss.post("/console/knowledge/edit",
                               data={**changed, "csrf": csrf_of(html), "action": "publish", "previewed": fingerprint})
    assert response.status == 409 and "预览之后有改动" in await response.text()
    async with transaction(console_runtime.sessions) as session:
        assert (await session.execute(select(KbEdit))).first() is None


async def test_a_gap_becomes_an_entry_the_gap_is_handled_and_the_question_is_answered(
    console_runtime: Runtime, new_client: Callable[[], Awaitable[Client]]
) -> None:
    chat = Chat(console_runtime)
    # No entry is near (one naming 溯源 rightly gets "您是不是想问“量值溯源和溯源链”", and a
    # choice list logs no gap)
    question = "量子计算机的计量到底该找谁做啊"
    first = (await chat.say(question))[0]
    assert "答不上来" in first
    async with transaction(console_runtime.sessions) as session:
        gap = (await session.execute(select(KbGap))).scalar_one()
    boss = await signed_in(new_client, "boss")
    dashboard = await (await boss.get("/console/manage/")).text()
    assert f'href="/console/knowledge/new?gap={gap.id}"' in dashboard

    form = unescape(await (await boss.get(f"/console/knowledge/new?gap={gap.id}")).text())
    assert f">{question}</textarea>" in form and "来自知识库缺口" in form
    fields = {"id": "metrology.quantum-traceability", "domain": "metrology", "title": "量子计算机的计量溯源找谁做",
              "questions": "\n".join([question, "量子计算机怎么做计量溯源", "量子器件的量值溯源去哪里做",
                                      "量子計算機的計量溯源找誰？"]),
              "answer": "量子计算机整机目前没有统一的检定规程，可就其中的时间频率、电学等参数"
                        "向具备相应校准能力的法定计量技术机构申请校准。回复“我要办理”，专员为您对接。",
              "basis": "《中华人民共和国计量法》", "tags": "量子计量, 量值溯源",
              "checked": "2026-11-20", "original": "", "based_on": "0", "gap": str(gap.id)}
    response = await publish(boss, fields)
    assert response.status == 303, unescape(await response.text())

    async with transaction(console_runtime.sessions) as session:
        handled = await session.get(KbGap, gap.id)
        assert handled is not None and handled.handled_entry == "metrology.quantum-traceability"
        audit = (await session.execute(select(StaffAudit).where(StaffAudit.action == "kb_create"))).scalar_one()
    assert f"知识库缺口 #{gap.id}" in audit.detail
    assert "/console/knowledge/new?gap=" not in await (await boss.get("/console/manage/")).text()
    answer = (await chat.as_user("next").say(question))[0]
    assert answer.startswith("量子计算机整机目前没有统一的检定规程"), answer


# --- several workers on one PostgreSQL database -----------------------------------------------------

@pytest.fixture
async def pg_settings(settings: Settings, postgres_url: str) -> Settings:
    return dataclasses.replace(settings, database_url=postgres_url, kb_poll_seconds=0.1)


async def _workers(settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock) -> list[Runtime]:
    """Two runtimes on one database, each with a knowledge service of its own, as two processes."""
    made = []
    for index in range(2):
        runtime = await Runtime.start(settings, nlu=nlu, knowledge=own_knowledge(knowledge),
                                     migrate=index == 0)
        runtime.dialogue.clock = clock
        made.append(runtime)
    async with transaction(made[0].sessions) as session:  # the manager only: no commissioners needed
        await staff_accounts.add(session, login="boss", display_name="Boss", role="manager", password=PASSWORD,
                                 commissioner=None, now=made[0].now())
    return made


async def _publish_on(runtime: Runtime, settings: Settings) -> None:
    server = TestServer(create_app(settings, runtime))
    client = TestClient(server, cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    try:
        assert (await sign_in(client, "boss")).status == 303
        assert (await publish(client, edited_fields(runtime, answer=NEW_ANSWER))).status == 303
    finally:
        await client.close()


async def _until_answered(runtime: Runtime, within: float) -> float:
    """Seconds until the runtime's chat gives the new answer (fails after ``within``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    chat = Chat(runtime, user=f"u-{uuid.uuid4().hex[:6]}")
    while loop.time() - started < within:
        if runtime.knowledge.version >= 1:
            assert (await chat.say(QUESTION))[0].startswith(NEW_ANSWER)
            return loop.time() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"the second worker did not pick up the edit within {within} s")


async def test_a_second_worker_on_postgresql_serves_the_edit_at_once_by_the_redis_event(
    pg_settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock, redis_prefix: str
) -> None:
    settings = dataclasses.replace(pg_settings, redis_url=REDIS_URL, redis_prefix=redis_prefix, kb_poll_seconds=60)
    first, second = await _workers(settings, nlu, knowledge, clock)
    try:
        await second.events.start()
        assert await second.events.wait_connected(5)
        await _publish_on(first, settings)  # the app starts the first worker's events
        assert await _until_answered(second, within=30) < 30  # polling every 60 s could not have done it
        assert "中国品牌日" in (await Chat(first).say(QUESTION))[0]
    finally:
        for runtime in (first, second):
            await runtime.close()


async def test_a_second_worker_on_postgresql_catches_up_by_polling_without_redis_and_a_new_one_at_start(
    pg_settings: Settings, nlu: Nlu, knowledge: KnowledgeService, clock: Clock
) -> None:
    first, second = await _workers(pg_settings, nlu, knowledge, clock)
    try:
        await _publish_on(first, pg_settings)
        await _until_answered(second, within=30)  # generous: a loaded CI machine builds slowly
        third = await Runtime.start(pg_settings, nlu=nlu, knowledge=own_knowledge(knowledge),
                                    migrate=False)  # started after
        try:
            assert third.knowledge.version == 1
            assert (await Chat(third).say(QUESTION))[0].startswith(NEW_ANSWER)
        finally:
            await third.close()
    finally:
        for runtime in (first, second):
            await runtime.close()
