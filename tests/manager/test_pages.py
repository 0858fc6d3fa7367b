"""The manager's pages over real HTTP (the aiohttp app of ``qibot serve``), signed in through the
console's sign-in form (real accounts, sessions and CSRF tokens): who may open what, bad input, the drill-down from the
dashboard, the exports read back (openpyxl, CSV), and the 好差评 loop from the enterprise's bad
rating in the chat to the dashboard's "followed up in time"."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import create_app
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import audit, cases, staff_accounts
from bot.services.knowledge import KnowledgeService
from bot.storage.db import transaction
from bot.storage.models import ChannelIdentity, Commissioner, Enterprise, Outbox, RatingFollowup
from intents.classifier import Nlu
from tests.helpers.chat import Chat
from tests.helpers.clock import Clock
from tests.helpers.console import PASSWORD, form_token, sign_in
from tests.helpers.managed import MONTH, NOW, Fixture, build_month
from tests.helpers.runtime import start_runtime

# who -> (login, display name, role, commissioner handle); zhang supervises 集美, wang works at the centre.
ACCOUNTS = {"manager": ("mgr", "周经理", "manager", None), "commissioner": ("wang", "王明", "commissioner", "wang"),
            "supervisor-elsewhere": ("zhang", "张主管", "supervisor", "zhang")}
ROUTES = ["/console/manage/", f"/console/manage/cases?month={MONTH}&metric=opened", "/console/manage/followups",
          "/console/manage/followups/1", f"/console/manage/report.xlsx?month={MONTH}",
          f"/console/manage/ledger.csv?month={MONTH}", f"/console/manage/ledger.xlsx?month={MONTH}",
          "/console/manage/archive/QI-2026-000001"]


@pytest.fixture
async def site(settings: Settings, nlu: Nlu, knowledge: KnowledgeService,
               aiohttp_client: Any) -> AsyncIterator[tuple[TestClient, Runtime, Fixture, Clock]]:
    clock = Clock(NOW)
    runtime = await start_runtime(settings, nlu, knowledge, clock)
    fx = await build_month(runtime.sessions, runtime.policy)
    async with transaction(runtime.sessions) as session:
        zhang = (await session.execute(select(Commissioner).where(Commissioner.handle == "zhang"))).scalar_one()
        zhang.is_supervisor = True  # of 集美: another site than the fixture's cases
        for login, name, role, handle in ACCOUNTS.values():
            await staff_accounts.add(session, login=login, display_name=name, role=role, password=PASSWORD,
                                     commissioner=handle, now=clock.now)
    app = create_app(settings, runtime)
    client = await aiohttp_client(app)
    yield client, runtime, fx, clock
    await runtime.close()


async def _as(client: TestClient, who: str) -> None:
    """Sign in as ``who`` through the console's form (any earlier session's cookie forgotten)."""
    client.session.cookie_jar.clear()
    signed = await sign_in(client, ACCOUNTS[who][0])
    assert signed.status in (302, 303), await signed.text()


async def _audited(runtime: Runtime, action: str, case_id: int | None = None) -> list[str]:
    """The audit log's entries of one action (the table managers read), as ``login`` values."""
    async with transaction(runtime.sessions) as session:
        rows = await audit.recent(session, case_id=case_id)
    return [row.login for row in rows if row.action == action]


async def test_anonymous_staff_are_sent_to_sign_in_and_commissioners_are_refused(site: Any) -> None:
    client, *_ = site
    for path in ROUTES:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"].startswith("/console/login"), path
    response = await client.post("/console/manage/followups/1", data={"step": "call"}, allow_redirects=False)
    assert response.status == 302
    await _as(client, "commissioner")
    for path in ROUTES:
        assert (await client.get(path, allow_redirects=False)).status == 403, path


async def test_the_dashboard_shows_the_month_and_every_figure_drills_down(site: Any) -> None:
    client, _, fx, _ = site
    await _as(client, "manager")
    response = await client.get(f"/console/manage/?month={MONTH}")
    assert response.status == 200
    page = await response.text()
    assert "服务统计" in page and "2026-11-01 至 2026-11-30" in page
    assert "60.0%" in page  # 及时签收率: 3 of 5
    links = set(re.findall(r'href="(/console/manage/cases\?[^"]+)"', page))
    assert len(links) >= 20
    level1 = next(link for link in links if "metric=level-1" in link).replace("&amp;", "&")
    listed = await (await client.get(level1)).text()
    assert fx.numbers["C"] in listed and fx.numbers["A"] not in listed
    for link in links:
        assert (await client.get(link.replace("&amp;", "&"))).status == 200, link


async def test_bad_filters_get_a_clear_400(site: Any) -> None:
    client, *_ = site
    await _as(client, "manager")
    for query, words in (("month=2026-13", "YYYY-MM"), ("from=2026-11-01", "YYYY-MM-DD"),
                         ("from=2026-11-30&to=2026-11-01", "不早于"), ("domain=weird", "未知的服务领域"),
                         ("site=abc", "站点"), ("metric=nothing", "未知的统计项"), ("page=0", "page"),
                         # str.isdigit() takes these and int() refuses them: they were a 500
                         ("site=%C2%B2", "站点"), ("page=%C2%B2", "page"), ("site=%EF%BC%91", "站点")):
        path = "/console/manage/cases" if query.startswith(("metric", "page")) else "/console/manage/"
        response = await client.get(f"{path}?{query}")
        assert response.status == 400, query
        assert words in await response.text(), query
    assert (await client.get("/console/manage/ledger.pdf")).status == 404
    assert (await client.get("/console/manage/followups/999999")).status == 404
    assert (await client.get("/console/manage/followups/%C2%B2")).status == 404
    assert (await client.get("/console/manage/archive/../../etc")).status == 404


async def test_the_monthly_workbook_has_the_figures_with_month_on_month_and_year_on_year(site: Any) -> None:
    client, runtime, *_ = site
    await _as(client, "manager")
    response = await client.get(f"/console/manage/report.xlsx?month={MONTH}")
    assert response.status == 200 and "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(await response.read()))
    rows = {row[0]: row[1:] for row in book["月报"].iter_rows(min_row=4, values_only=True)}
    # this month, last month, 环比, last year, 同比
    assert rows["新增需求"] == (5, 1, 4.0, 1, 4.0)
    assert rows["办结"][0] == 3
    assert rows["签收"] == (4, 0, "—", 1, 3.0)  # no change from zero: shown as —
    assert rows["及时签收率"][0] == pytest.approx(0.6)
    assert rows["非常满意"][0] == 1 and rows["基本满意"][0] == 1 and rows["非常不满意"][0] == 1
    assert rows["满意率（前三级：非常满意+满意+基本满意）"][0] == pytest.approx(2 / 3)
    assert rows["满意率（前两级：非常满意+满意）"][0] == pytest.approx(1 / 3)
    assert rows["差评"][0] == 1 and rows["平均分"][0] == pytest.approx(3.0)
    assert [r[0] for r in book["差评回访"].iter_rows(min_row=2, values_only=True)] == [site[2].numbers["C"]]
    assert await _audited(runtime, "export_report") == ["mgr"]


async def test_the_ledger_is_one_masked_row_per_case(site: Any) -> None:
    client, _, fx, _ = site
    await _as(client, "manager")
    text = (await (await client.get(f"/console/manage/ledger.csv?month={MONTH}")).read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "案件编号" and len(rows) == 1 + 5
    assert "13912345678" not in text and "139****5678" in text
    assert "91350200MA2XYZ1234" not in text and "陈小红" not in text
    by_number = {r[0]: r for r in rows[1:]}
    assert by_number[fx.numbers["C"]][16:20] == ["否", "否", "1", "非常不满意"]
    book = load_workbook(io.BytesIO(await (await client.get(f"/console/manage/ledger.xlsx?month={MONTH}")).read()))
    assert book["工作台账"].max_row == 6


async def test_a_closed_case_archive_downloads_masked_with_its_digest(site: Any) -> None:
    client, _, fx, _ = site
    await _as(client, "manager")
    response = await client.get(f"/console/manage/archive/{fx.numbers['A']}")
    assert response.status == 200
    body = json.loads(await response.read())
    assert len(body["sha256_of_original"]) == 64 and "13912345678" not in json.dumps(body, ensure_ascii=False)
    assert (await client.get(f"/console/manage/archive/{fx.numbers['D']}")).status == 404  # not closed


async def _post(client: TestClient, followup_id: int, **form: str) -> Any:
    return await client.post(f"/console/manage/followups/{followup_id}", data=form, allow_redirects=False)


async def test_the_bad_rating_loop_from_the_chat_to_the_dashboard(site: Any) -> None:
    client, runtime, _, clock = site
    async with transaction(runtime.sessions) as session:
        enterprise = Enterprise(name="厦门回访测试有限公司", district="湖里区")
        session.add(enterprise)
        await session.flush()
        identity = ChannelIdentity(channel="cli", external_id="rater", enterprise_id=enterprise.id)
        session.add(identity)
        await session.flush()
        case = await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                                     description="需要校准", mode="online", district="湖里区", now=clock.now)
        case = await cases.require_case(session, case.number)
        wang = (await session.execute(select(Commissioner).where(Commissioner.handle == "wang"))).scalar_one()
        await cases.accept(session, case, wang, clock.now)
        await cases.resolve(session, case, wang, "已校准", clock.now)
    chat = Chat(runtime, user="rater")
    clock.advance(minutes=5)
    assert any("很抱歉" in line for line in await chat.say("1分 非常不满意"))
    async with transaction(runtime.sessions) as session:
        followup = (await session.execute(
            select(RatingFollowup).where(RatingFollowup.case_id == case.id))).scalar_one()
    await _as(client, "manager")
    listing = await (await client.get("/console/manage/followups")).text()
    assert case.number in listing
    csrf = await form_token(client, "/console/manage/followups")  # the token of this session
    assert (await _post(client, followup.id, step="call", note="已电话回访")).status == 403  # no token
    assert (await _post(client, followup.id, step="call", note="x", csrf="forged")).status == 403
    early = await _post(client, followup.id, step="reply", note="已处理", csrf=csrf)
    assert early.status == 400 and "不能进行这一步" in await early.text()
    steps = (("call", {"note": "已电话回访企业，反映等待时间长"}), ("verify", {"note": "核实：受理超时"}),
             ("outcome", {"outcome": "rectify", "days": "5", "note": "登记整改：增加值班"}),
             ("reply", {"note": "已安排增加值班人员，缩短受理时间"}))
    for step, form in steps:
        clock.advance(minutes=20)  # within the console's idle timeout (30 min): one sitting
        response = await _post(client, followup.id, step=step, csrf=csrf, **form)
        assert response.status == 303, (step, await response.text())
    page = await (await client.get(f"/console/manage/followups/{followup.id}")).text()
    assert "周经理（mgr）" in page and "已登记整改" in page and "按时答复" in page
    async with transaction(runtime.sessions) as session:
        sent = (await session.execute(
            select(Outbox).where(Outbox.recipient == "rater", Outbox.kind == "followup_reply"))).scalar_one()
    assert "已登记整改" in sent.payload["text"] and "整改期限" in sent.payload["text"]
    assert any("满意" in line for line in await chat.say("4"))
    page = await (await client.get(f"/console/manage/followups/{followup.id}")).text()
    assert "企业对回访的评价" in page and "满意" in page
    dashboard = await (await client.get(f"/console/manage/?month={MONTH}")).text()
    # Two bad ratings this month: the fixture's C, past its deadline unanswered, and this one,
    # answered in time.
    assert re.search(r"差评按时回访率<br><a [^>]+>1</a> / <a [^>]+>2</a>", dashboard)
    assert "50.0%" in dashboard
    assert await _audited(runtime, "followup_reply", case.id) == ["mgr"]


async def test_a_supervisor_sees_only_their_own_site(site: Any) -> None:
    client, _, fx, _ = site
    await _as(client, "supervisor-elsewhere")
    page = await (await client.get(f"/console/manage/?month={MONTH}")).text()
    assert "集美" in page and "湖里区质量" not in page
    found = re.search(r"新增需求</span><a class=\"num\" [^>]+>(\d+)</a>", page)
    assert found and found.group(1) == "1"  # D, waiting with its assignee at this site
    listed = await (await client.get(f"/console/manage/cases?month={MONTH}&metric=opened&site=1")).text()
    assert fx.numbers["D"] in listed and fx.numbers["A"] not in listed  # held to their site
    assert (await client.get("/console/manage/followups/1")).status == 404
    assert "没有需要处理的差评回访" in await (await client.get("/console/manage/followups")).text()


async def test_the_exit_mechanism_for_institutions_and_experts(site: Any) -> None:
    client, runtime, _, _ = site
    await _as(client, "commissioner")
    assert (await client.get("/console/manage/library", allow_redirects=False)).status == 403
    await _as(client, "supervisor-elsewhere")
    assert (await client.get("/console/manage/library", allow_redirects=False)).status == 403
    await _as(client, "manager")
    csrf = await form_token(client, "/console/manage/followups")  # the token of this session
    added = await client.post("/console/manage/library", allow_redirects=False, data={
        "csrf": csrf, "action": "add_institution", "name": "厦门示例检测技术有限公司", "kind": "检验检测机构",
        "domains": "testing", "district": "湖里区"})
    assert added.status == 303
    async with transaction(runtime.sessions) as session:
        from bot.storage.models import Institution
        found = (await session.execute(select(Institution).where(Institution.name == "厦门示例检测技术有限公司"))
                 ).scalar_one()
    no_reason = await client.post("/console/manage/library", data={
        "csrf": csrf, "action": "status", "kind": "institution", "id": str(found.id), "status": "retired",
        "reason": " "})
    assert no_reason.status == 400 and "请填写原因" in await no_reason.text()
    retired = await client.post("/console/manage/library", allow_redirects=False, data={
        "csrf": csrf, "action": "status", "kind": "institution", "id": str(found.id), "status": "retired",
        "reason": "资质证书到期未续"})
    assert retired.status == 303
    page = await (await client.get("/console/manage/library")).text()
    assert "资质证书到期未续" in page and "周经理（mgr）" in page
    async with transaction(runtime.sessions) as session:
        from bot.services import matching
        offered = await matching.suggest_resources(session, "testing", "湖里区")
    assert "厦门示例检测技术有限公司" not in json.dumps(offered, ensure_ascii=False)
    assert (await client.post("/console/manage/library", data={"action": "status"})).status == 403  # no CSRF
    assert "mgr" in await _audited(runtime, "library_status")


async def test_managers_edit_the_canned_replies(site: Any, settings: Settings) -> None:
    from bot.services import canned

    client, *_ = site
    await _as(client, "commissioner")
    assert (await client.get("/console/manage/canned", allow_redirects=False)).status == 403
    await _as(client, "manager")
    page = await (await client.get("/console/manage/canned")).text()
    assert "补充材料" in page  # the bundled list until a manager saves one
    csrf = await form_token(client, "/console/manage/followups")  # the token of this session
    form = [("csrf", csrf), ("title", "已受理"), ("text", "您好，已由我负责办理。"), ("title", ""), ("text", ""),
            ("title", "节假日"), ("text", "节假日期间回复可能延迟，敬请谅解。")]
    saved = await client.post("/console/manage/canned", data=form)
    assert saved.status == 200 and "已保存 2 条" in await saved.text()
    assert [c.title for c in canned.load(settings.data_dir)] == ["已受理", "节假日"]
    duplicate = await client.post("/console/manage/canned", data=[("csrf", csrf), ("title", "甲"), ("text", "一"),
                                                                  ("title", "甲"), ("text", "二")])
    assert duplicate.status == 400 and "重复" in await duplicate.text()
    assert [c.title for c in canned.load(settings.data_dir)] == ["已受理", "节假日"]  # unchanged
    assert (await client.post("/console/manage/canned", data=[("title", "x"), ("text", "y")])).status == 403
