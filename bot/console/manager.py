"""The manager's pages under ``/console/manage/``: the dashboard with its drill-downs, the
好差评 follow-ups, and the exports. Thin on purpose: each handler checks the role (and, for a
site supervisor, the site), parses the query, calls one service (``bot/services/stats.py``,
``followups.py``, ``reports.py``) and renders a template; every change goes through a form with
a CSRF token and is audited.

Who may see what: managers and administrators everything; a site supervisor the figures and
follow-ups of their own sites; a commissioner none of it (403).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import ChannelDeps
from bot.console import charts
from bot.console.auth import StaffPrincipal, audit, check_csrf, csrf_token, require_staff
from bot.services import canned, followups, libraries, reports, stats
from bot.services.case_states import STATUS_ZH, event_name
from bot.services.cases import CaseError, domain_name, masked_enterprise
from bot.services.enterprises import XIAMEN_DISTRICTS
from bot.storage.db import transaction
from bot.storage.models import Commissioner, RatingFollowup, ServiceCase, Site
from intents.labels import DOMAIN_NAMES_ZH

log = logging.getLogger(__name__)

MANAGERS = ("manager", "admin")
OVERSEERS = ("manager", "admin", "supervisor")
DISTRICTS = tuple(f"{d}区" for d in XIAMEN_DISTRICTS)
DOMAINS = {k: v for k, v in DOMAIN_NAMES_ZH.items() if k != "out_of_scope"}
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ID_RE = re.compile(r"[0-9]{1,9}")  # ASCII digits: str.isdigit() takes "²", which int() refuses (a 500)
NUMBER_RE = re.compile(r"^[A-Za-z]{2}-\d{4}-\d{6}$")
LEVEL_COLORS = {5: "#2e7d32", 4: "#66bb6a", 3: "#9ccc65", 2: "#ef6c00", 1: "#c62828"}
MAX_DAYS = 400


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("bot.console", "templates"),
                             autoescape=jinja2.select_autoescape(("html",)), trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    env.filters["domain_name"] = domain_name
    env.globals.update(domain_name=domain_name, STATUS_ZH=STATUS_ZH, event_name=event_name,
                       masked_enterprise=masked_enterprise)
    return env


class _Page:
    """What every manager handler needs: the dependencies, the staff member, the clock."""

    def __init__(self, request: web.Request, deps: ChannelDeps, staff: StaffPrincipal) -> None:
        self.request, self.deps, self.staff = request, deps, staff
        self.tz = deps.policy.calendar.tz
        self.now = deps.clock()

    def local(self, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(self.tz).strftime(fmt) if value else ""

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        html = _templates().get_template(name).render(staff=self.staff, csrf=csrf_token(self.request),
                                                       local=self.local, **context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def error(self, message: str, status: int = 400) -> web.Response:
        return self.render("manager/error.html", status=status, message=message)


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message, content_type="text/plain")


def _parse_filter(page: _Page) -> tuple[stats.StatsFilter, dict[str, str]]:
    """The period (``month=YYYY-MM``, or ``from``/``to`` dates, inclusive) and site, domain and
    district from the query; a supervisor is held to their own site. Bad input → 400."""
    q = page.request.query
    params: dict[str, str] = {}
    where: dict[str, Any] = {}
    site = q.get("site", "").strip()
    if site:
        if not ID_RE.fullmatch(site):
            raise _bad("site 应为站点编号")
        where["site_id"] = int(site)
    if page.staff.site_ids and where.get("site_id") not in page.staff.site_ids:
        where["site_id"] = min(page.staff.site_ids)
    if where.get("site_id"):
        params["site"] = str(where["site_id"])
    domain = q.get("domain", "").strip()
    if domain:
        if domain not in DOMAINS:
            raise _bad(f"未知的服务领域：{domain[:40]}")
        where["domain"] = params["domain"] = domain
    district = q.get("district", "").strip()
    if district:
        if len(district) > 40:
            raise _bad("区名过长")
        where["district"] = params["district"] = district
    start, end = q.get("from", "").strip(), q.get("to", "").strip()
    if start or end:
        if not (DATE_RE.match(start) and DATE_RE.match(end)):
            raise _bad("起止日期格式应为 YYYY-MM-DD")
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise _bad("起止日期不是有效日期") from None
        if last < first or (last - first).days > MAX_DAYS:
            raise _bad(f"结束日期须不早于开始日期，且区间不超过 {MAX_DAYS} 天")
        since = datetime(first.year, first.month, first.day, tzinfo=page.tz)
        until = datetime(last.year, last.month, last.day, tzinfo=page.tz) + timedelta(days=1)
        params.update({"from": start, "to": end})
        return stats.StatsFilter(since=since, until=until, **where), params
    month = q.get("month", "").strip() or f"{page.now.astimezone(page.tz):%Y-%m}"
    try:
        found = stats.month_filter(month, page.tz, **where)
    except stats.StatsError as exc:
        raise _bad(str(exc)) from None
    params["month"] = month
    return found, params


def _link(path: str, params: dict[str, str], **more: str) -> str:
    return f"{path}?{urlencode({**params, **more})}"


Handler = Callable[[_Page], Awaitable[web.StreamResponse]]


def setup_manager_routes(app: web.Application, deps: web.AppKey[ChannelDeps]) -> None:
    """Mount the manager's pages; ``deps`` is the key under which the app holds the database,
    the clock and the service rules once it has started (``bot/app.py``)."""

    def page(roles: tuple[str, ...], handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            staff = await require_staff(request, *roles)
            return await handler(_Page(request, request.app[deps], staff))
        return run

    app.router.add_get("/console/manage/", page(OVERSEERS, dashboard))
    app.router.add_get("/console/manage/cases", page(OVERSEERS, drill_down))
    app.router.add_get("/console/manage/followups", page(OVERSEERS, followup_list))
    app.router.add_get("/console/manage/followups/{id}", page(OVERSEERS, followup_page))
    app.router.add_post("/console/manage/followups/{id}", page(OVERSEERS, followup_step))
    app.router.add_get("/console/manage/report.xlsx", page(OVERSEERS, monthly_report))
    app.router.add_get("/console/manage/ledger.{fmt}", page(OVERSEERS, ledger))
    app.router.add_get("/console/manage/archive/{number}", page(OVERSEERS, archive_download))
    app.router.add_get("/console/manage/library", page(MANAGERS, library_page))
    app.router.add_post("/console/manage/library", page(MANAGERS, library_change))
    app.router.add_get("/console/manage/commissioners", page(OVERSEERS, commissioners_page))
    app.router.add_post("/console/manage/commissioners", page(OVERSEERS, commissioners_change))
    app.router.add_get("/console/manage/canned", page(MANAGERS, canned_page))
    app.router.add_post("/console/manage/canned", page(MANAGERS, canned_save))
    app.router.add_get("/console/manage/static/{name}", stylesheet)


STATIC = Path(__file__).resolve().parent / "static"
STYLESHEETS = frozenset({"manager.css"})


async def stylesheet(request: web.Request) -> web.StreamResponse:
    """The pages' styles, from this package (no sign-in needed: they hold no data)."""
    name = request.match_info["name"]
    if name not in STYLESHEETS:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": "text/css; charset=utf-8",
                                                    "Cache-Control": "public, max-age=3600"})


# --- dashboard --------------------------------------------------------------------------------

async def _choices(session: AsyncSession, staff: StaffPrincipal) -> list[tuple[int, str]]:
    stmt = select(Site.id, Site.name).order_by(Site.id)
    if staff.site_ids:
        stmt = stmt.where(Site.id.in_(staff.site_ids))
    return [(int(i), str(n)) for i, n in (await session.execute(stmt)).all()]


async def dashboard(page: _Page) -> web.StreamResponse:
    where, params = _parse_filter(page)
    async with transaction(page.deps.sessions) as session:
        await stats.stamp_deadlines(session, page.deps.policy)
    async with transaction(page.deps.sessions) as session:
        board = await stats.dashboard(session, where, page.now, page.tz)
        sites = await _choices(session, page.staff)
    drill = "/console/manage/cases"
    scale = followups.scale()
    level_bars = [charts.Bar(f"{scale.levels[s]}", board.levels[s], _link(drill, params, metric=f"level-{s}"),
                             LEVEL_COLORS[s]) for s in (5, 4, 3, 2, 1)]
    daily_bars = [charts.Bar(f"{d:%m-%d}", n, _link(drill, params, metric=f"day-{d.isoformat()}"))
                  for d, n in board.daily]
    workload_bars = [charts.Bar(w.name[:6], w.opened, _link(drill, params, metric=f"commissioner-{w.commissioner_id}"))
                     for w in board.workload[:10]]
    return page.render(
        "manager/dashboard.html", board=board, params=params, sites=sites, domains=DOMAINS, districts=DISTRICTS,
        link=lambda metric: _link(drill, params, metric=metric),
        export=lambda path, **more: _link(path, params, **more),
        levels_chart=charts.hbars(level_bars, "五级评价分布"),
        daily_chart=charts.columns(daily_bars, "每日新增需求", every=max(1, -(-len(daily_bars) // 5))),
        workload_chart=charts.hbars(workload_bars, "专员本期新增"),
        gauges={
            "accept": charts.gauge(board.acceptance_rate, "及时签收率", _link(drill, params, metric="accept_late")),
            "resolve": charts.gauge(board.completion_rate, "按时办结率", _link(drill, params, metric="resolve_late")),
            "top3": charts.gauge(board.satisfaction_top3, "满意率（前三级）", _link(drill, params, metric="rated")),
            "top2": charts.gauge(board.satisfaction_top2, "满意率（前两级）", _link(drill, params, metric="rated")),
            "followup": charts.gauge(board.followup_in_time_rate, "差评按时回访率",
                                     _link(drill, params, metric="followup_late")),
        },
        month=params.get("month", ""), levels=scale.levels, period=_period(page, where),
    )


def _period(page: _Page, where: stats.StatsFilter) -> str:
    last = where.until - timedelta(seconds=1)
    return f"{page.local(where.since, '%Y-%m-%d')} 至 {page.local(last, '%Y-%m-%d')}"


async def drill_down(page: _Page) -> web.StreamResponse:
    where, params = _parse_filter(page)
    metric = page.request.query.get("metric", "opened")
    number = page.request.query.get("page", "1")
    if not ID_RE.fullmatch(number) or not 1 <= int(number) <= 100_000:
        raise _bad("page 应为正整数")
    async with transaction(page.deps.sessions) as session:
        try:
            listed = await stats.case_list(session, where, metric, page.now, page.tz, page=int(number))
        except stats.StatsError as exc:
            raise _bad(str(exc)) from None
    label = stats.METRIC_LABELS.get(metric) or _metric_label(metric)
    pages = max(1, -(-listed.total // listed.per_page))
    return page.render("manager/cases.html", listed=listed, label=label, period=_period(page, where),
                       params=params, pages=pages, back=_link("/console/manage/", params),
                       page_link=lambda n: _link("/console/manage/cases", params, metric=metric, page=str(n)))


def _metric_label(metric: str) -> str:
    if metric.startswith("level-"):
        return f"评价：{followups.scale().level(int(metric[6:]))}"
    if metric.startswith("day-"):
        return f"{metric[4:]} 新增"
    if metric.startswith("commissioner-"):
        return "专员经办"
    return metric


# --- follow-ups ---------------------------------------------------------------------------------

async def _may_work(session: AsyncSession, staff: StaffPrincipal, followup: RatingFollowup) -> bool:
    """A supervisor works the follow-ups of their own sites' cases only."""
    if not staff.site_ids:
        return True
    case = followup.case
    handler = case.owner_id or case.assignee_id
    if handler is None:
        return False
    person = await session.get(Commissioner, handler)
    return person is not None and person.site_id in staff.site_ids


async def followup_list(page: _Page) -> web.StreamResponse:
    state = page.request.query.get("state", "open")
    if state not in ("open", "all"):
        raise _bad("state 应为 open 或 all")
    async with transaction(page.deps.sessions) as session:
        items = [f for f in await followups.listing(session, state=state) if await _may_work(session, page.staff, f)]
    return page.render("manager/followups.html", items=items, state=state, scale=followups.scale(),
                       overdue=lambda f: followups.is_overdue(f, page.now), in_time=followups.in_time)


def _followup_id(page: _Page) -> int:
    raw = page.request.match_info["id"]
    if not ID_RE.fullmatch(raw):
        raise web.HTTPNotFound(text="没有这条回访")
    return int(raw)


async def _render_followup(page: _Page, session: AsyncSession, followup: RatingFollowup, error: str = "",
                           status: int = 200) -> web.Response:
    return page.render("manager/followup.html", status=status, f=followup, scale=followups.scale(), error=error,
                       overdue=followups.is_overdue(followup, page.now), in_time=followups.in_time(followup),
                       rectify_days=page.deps.policy.followup_working_days)


async def followup_page(page: _Page) -> web.StreamResponse:
    async with transaction(page.deps.sessions) as session:
        followup = await followups.get(session, _followup_id(page))
        if followup is None or not await _may_work(session, page.staff, followup):
            raise web.HTTPNotFound(text="没有这条回访")
        return await _render_followup(page, session, followup)


STEPS = ("call", "verify", "outcome", "reply")


async def followup_step(page: _Page) -> web.StreamResponse:
    form = await page.request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await check_csrf(page.request, fields)
    step, note = fields.get("step", ""), fields.get("note", "")
    if step not in STEPS:
        raise _bad("未知的操作")
    actor = f"{page.staff.display_name}（{page.staff.login}）"
    policy = page.deps.policy
    async with transaction(page.deps.sessions) as session:
        followup = await followups.get(session, _followup_id(page))
        if followup is None or not await _may_work(session, page.staff, followup):
            raise web.HTTPNotFound(text="没有这条回访")
        try:
            async with session.begin_nested():
                if step == "call":
                    await followups.record_call(session, followup, actor, note, page.now)
                elif step == "verify":
                    await followups.record_verified(session, followup, actor, note, page.now)
                elif step == "outcome":
                    days = fields.get("days", "") or str(policy.followup_working_days)
                    if not ID_RE.fullmatch(days) or len(days) > 3:
                        raise followups.FollowupError("整改期限须为 1～60 个工作日")
                    await followups.record_outcome(session, followup, actor, fields.get("outcome", ""), note,
                                                   page.now, policy.calendar, int(days))
                else:
                    await followups.reply(session, followup, actor, note, page.now, policy.calendar)
                await audit(session, page.staff, f"followup_{step}", followup.case_id, f"回访 {followup.id}")
        except followups.FollowupError as exc:
            followup = await followups.require(session, followup.id)
            return await _render_followup(page, session, followup, str(exc), status=400)
    if step == "reply":
        page.deps.wake()
    raise web.HTTPSeeOther(f"/console/manage/followups/{followup.id}")


# --- exports ------------------------------------------------------------------------------------

def _download(body: bytes, filename: str, content_type: str) -> web.Response:
    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def monthly_report(page: _Page) -> web.StreamResponse:
    where, params = _parse_filter(page)
    month = params.get("month")
    if month is None:
        raise _bad("月报按月生成：请用 month=YYYY-MM")
    extra = {k: v for k, v in (("site_id", where.site_id), ("domain", where.domain),
                               ("district", where.district)) if v}
    async with transaction(page.deps.sessions) as session:
        await stats.stamp_deadlines(session, page.deps.policy)
    async with transaction(page.deps.sessions) as session:
        body = await reports.monthly_workbook(session, month, page.now, page.tz, **extra)
        await audit(session, page.staff, "export_report", None, f"月报 {month} {params}")
    return _download(body, f"qibot-report-{month}.xlsx", XLSX)


async def ledger(page: _Page) -> web.StreamResponse:
    fmt = page.request.match_info["fmt"]
    if fmt not in ("csv", "xlsx"):
        raise web.HTTPNotFound(text="台账可导出为 ledger.csv 或 ledger.xlsx")
    where, params = _parse_filter(page)
    async with transaction(page.deps.sessions) as session:
        await stats.stamp_deadlines(session, page.deps.policy)
    async with transaction(page.deps.sessions) as session:
        rows = await reports.ledger_rows(session, where, page.tz)
        await audit(session, page.staff, "export_ledger", None, f"台账 {fmt} {params} {len(rows)} 行")
    label = params.get("month") or f"{params.get('from')}_{params.get('to')}"
    if fmt == "csv":
        return _download(reports.ledger_csv(rows), f"qibot-ledger-{label}.csv", "text/csv")
    return _download(reports.ledger_xlsx(rows), f"qibot-ledger-{label}.xlsx", XLSX)


async def archive_download(page: _Page) -> web.StreamResponse:
    number = page.request.match_info["number"]
    if not NUMBER_RE.match(number):
        raise web.HTTPNotFound(text="没有这个档案")
    async with transaction(page.deps.sessions) as session:
        case = (await session.execute(
            select(ServiceCase).where(ServiceCase.number == number.upper()))).scalar_one_or_none()
        if case is None:
            raise web.HTTPNotFound(text="没有这个档案")
        if page.staff.site_ids:
            handler = case.owner_id or case.assignee_id
            person = await session.get(Commissioner, handler) if handler else None
            if person is None or person.site_id not in page.staff.site_ids:
                raise web.HTTPNotFound(text="没有这个档案")
        try:
            name, body = await reports.archive_file(session, number)
        except CaseError as exc:
            return page.error(str(exc), status=404)
        await audit(session, page.staff, "export_archive", case.id, name)
    return _download(body, name, "application/json")


# --- libraries (institutions, experts: the exit mechanism) -------------------------------------

async def _render_library(page: _Page, session: AsyncSession, error: str = "", status: int = 200) -> web.Response:
    institutions, experts = await libraries.listing(session)
    return page.render("manager/library.html", status=status, institutions=institutions, experts=experts,
                       status_zh=libraries.STATUS_ZH, domains=DOMAINS, districts=DISTRICTS, error=error)


async def library_page(page: _Page) -> web.StreamResponse:
    async with transaction(page.deps.sessions) as session:
        return await _render_library(page, session)


async def library_change(page: _Page) -> web.StreamResponse:
    form = await page.request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await check_csrf(page.request, fields)
    action = fields.get("action", "")
    actor = f"{page.staff.display_name}（{page.staff.login}）"
    domains = [v for v in form.getall("domains", []) if isinstance(v, str)]
    async with transaction(page.deps.sessions) as session:
        try:
            async with session.begin_nested():
                if action == "add_institution":
                    found = await libraries.add_institution(
                        session, name=fields.get("name", ""), kind=fields.get("kind", ""), domains=domains,
                        district=fields.get("district", ""), contact=fields.get("contact", ""), actor=actor,
                        now=page.now)
                    detail = f"机构入库 {found.name}"
                elif action == "add_expert":
                    raw = fields.get("institution_id", "")
                    if raw and not ID_RE.fullmatch(raw):
                        raise libraries.LibraryError("所属机构不存在")
                    expert = await libraries.add_expert(
                        session, name=fields.get("name", ""), title=fields.get("title", ""), domains=domains,
                        institution_id=int(raw) if raw else None, contact=fields.get("contact", ""), actor=actor,
                        now=page.now)
                    detail = f"专家入库 {expert.name}"
                elif action == "status":
                    raw = fields.get("id", "")
                    if not ID_RE.fullmatch(raw):
                        raise libraries.LibraryError("没有这条资源")
                    changed = await libraries.set_status(session, fields.get("kind", ""), int(raw),
                                                         fields.get("status", ""), fields.get("reason", ""),
                                                         actor, page.now)
                    detail = f"{changed.name} → {libraries.STATUS_ZH[changed.status]}：{changed.status_reason}"
                else:
                    raise libraries.LibraryError("未知的操作")
                await audit(session, page.staff, f"library_{action}", None, detail)
        except libraries.LibraryError as exc:
            return await _render_library(page, session, str(exc), status=400)
    raise web.HTTPSeeOther("/console/manage/library")


# --- the commissioners' library (skills, sites, districts, duty, capacity) ----------------------

def _kept_sites(staff: StaffPrincipal) -> frozenset[int] | None:
    """None: every site (managers, administrators); a site supervisor: their own sites only."""
    return None if staff.sees_all else staff.site_ids


async def _render_commissioners(page: _Page, session: AsyncSession, error: str = "", status: int = 200
                                ) -> web.Response:
    sites = _kept_sites(page.staff)
    rows = await libraries.commissioners(session, sites)
    choices = await _choices(session, page.staff)
    return page.render("manager/commissioners.html", status=status, rows=rows, sites=choices, domains=DOMAINS,
                       districts=DISTRICTS, error=error, managers=sites is None,
                       capacity_limit=libraries.MAX_CAPACITY)


async def commissioners_page(page: _Page) -> web.StreamResponse:
    async with transaction(page.deps.sessions) as session:
        return await _render_commissioners(page, session)


def _fields(form: Any, fields: dict[str, str]) -> libraries.CommissionerFields:
    raw_site = fields.get("site_id", "").strip()
    if raw_site and not ID_RE.fullmatch(raw_site):
        raise libraries.LibraryError("没有这个站点")
    return libraries.CommissionerFields(
        name=fields.get("name", ""), domains=[v for v in form.getall("domains", []) if isinstance(v, str)],
        site_id=int(raw_site) if raw_site else None,
        districts=[v for v in form.getall("districts", []) if isinstance(v, str)],
        max_open_cases=fields.get("max_open_cases", "")[:12], supervisor=fields.get("supervisor") == "1")


def _person_id(fields: dict[str, str]) -> int:
    raw = fields.get("id", "")
    if not ID_RE.fullmatch(raw):  # ASCII digits: str.isdigit() also takes "１"
        raise libraries.LibraryError("没有这位服务专员")
    return int(raw)


async def commissioners_change(page: _Page) -> web.StreamResponse:
    """Add, edit, suspend or reinstate a commissioner; each change is one audited transaction."""
    form = await page.request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await check_csrf(page.request, fields)
    action = fields.get("action", "")
    actor = f"{page.staff.display_name}（{page.staff.login}）"
    sites = _kept_sites(page.staff)
    async with transaction(page.deps.sessions) as session:
        try:
            async with session.begin_nested():
                if action == "add":
                    person = await libraries.add_commissioner(
                        session, handle=fields.get("handle", ""), fields=_fields(form, fields),
                        allowed_districts=DISTRICTS, sites=sites, actor=actor, now=page.now)
                    detail = f"服务专员入库 {person.handle}"
                elif action == "edit":
                    person, changed = await libraries.edit_commissioner(
                        session, _person_id(fields), fields=_fields(form, fields), on_duty=fields.get("on_duty") == "1",
                        allowed_districts=DISTRICTS, sites=sites)
                    detail = f"服务专员 {person.handle} 修改：" + "；".join(changed)
                elif action in ("suspend", "reinstate"):
                    person = await libraries.set_commissioner_active(
                        session, _person_id(fields), action == "reinstate", fields.get("reason", ""), actor,
                        page.now, sites)
                    detail = f"服务专员 {person.handle} → {'在岗' if person.active else '暂停'}：{person.status_reason}"
                else:
                    raise libraries.LibraryError("未知的操作")
                await audit(session, page.staff, f"commissioner_{action}", None, detail)
        except libraries.LibraryError as exc:
            return await _render_commissioners(page, session, str(exc), status=400)
    raise web.HTTPSeeOther("/console/manage/commissioners")


# --- canned replies -----------------------------------------------------------------------------

EMPTY_ROWS = 3  # blank rows offered for new entries


async def canned_page(page: _Page) -> web.StreamResponse:
    entries = await asyncio.to_thread(canned.load, page.deps.settings.data_dir)
    return page.render("manager/canned.html", entries=entries, blank=EMPTY_ROWS, error="", saved=False,
                       limits=(canned.MAX_TITLE, canned.MAX_TEXT))


async def canned_save(page: _Page) -> web.StreamResponse:
    form = await page.request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await check_csrf(page.request, fields)
    titles = [v for v in form.getall("title", []) if isinstance(v, str)]
    texts = [v for v in form.getall("text", []) if isinstance(v, str)]
    if len(titles) != len(texts) or len(titles) > canned.MAX_ENTRIES + EMPTY_ROWS:
        raise _bad("表单不完整")
    entries = [canned.Canned(t, x) for t, x in zip(titles, texts, strict=True)]
    try:
        kept = await asyncio.to_thread(canned.save, page.deps.settings.data_dir, entries)
    except canned.CannedError as exc:
        return page.render("manager/canned.html", status=400, entries=entries, blank=0, error=str(exc),
                           saved=False, limits=(canned.MAX_TITLE, canned.MAX_TEXT))
    async with transaction(page.deps.sessions) as session:
        await audit(session, page.staff, "canned_replies_saved", None, f"{len(kept)} 条常用回复")
    return page.render("manager/canned.html", entries=kept, blank=EMPTY_ROWS, error="", saved=True,
                       limits=(canned.MAX_TITLE, canned.MAX_TEXT))
