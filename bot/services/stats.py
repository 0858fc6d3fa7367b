"""The manager's figures (服务质量监督, 6.11-6.12): cases opened, accepted, resolved; on-time
acceptance (及时签收率) and completion (按时办结率) against working-calendar deadlines; the five
rating levels and both readings of the satisfaction rate; bad ratings and the share followed up
in time; workload and median first response per commissioner; overdue and about-to-breach
cases; unanswered questions.

Every figure is one SQL aggregate (GROUP BY / SUM(CASE …)) over the same filtered set of cases,
and every figure has a drill-down: :func:`case_list` takes the same filter and the figure's
``metric`` name and lists exactly the cases counted. Working time cannot be counted in SQL, so
each case's deadlines are stamped once, in Python, with the working calendar
(:func:`stamp_deadlines`); the rates are then plain comparisons. Identical on SQLite and
PostgreSQL (only the day bucket of the daily series differs by dialect).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.services.case_states import OPEN_STATUSES
from bot.services.cases import mask_company
from bot.services.policy import ServicePolicy
from bot.storage.models import Commissioner, Enterprise, KbGap, Rating, RatingFollowup, ServiceCase

BREACH_WINDOW = timedelta(hours=24)  # "about to breach": due within this
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class StatsError(ValueError):
    """A filter that cannot be used (a bad month, an unknown metric); the message says why."""


@dataclass(frozen=True, slots=True)
class StatsFilter:
    """The period [since, until) and optional site, domain and district."""

    since: datetime
    until: datetime
    site_id: int | None = None
    domain: str | None = None
    district: str | None = None

    def shifted(self, months: int, tz: ZoneInfo) -> StatsFilter:
        """The same filter over the calendar month ``months`` away (for month-on-month and
        year-on-year columns); only meaningful for a filter that covers one month."""
        local = self.since.astimezone(tz)
        index = local.year * 12 + local.month - 1 + months
        return replace(self, since=month_start(index // 12, index % 12 + 1, tz),
                       until=month_start((index + 1) // 12, (index + 1) % 12 + 1, tz))


def month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    return datetime(year, month, 1, tzinfo=tz)


def month_filter(text: str, tz: ZoneInfo, **where: Any) -> StatsFilter:
    """``2026-11`` → that calendar month in the staff's time zone (Beijing)."""
    match = MONTH_RE.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2200:
        raise StatsError(f"月份格式应为 YYYY-MM，例如 2026-11（收到 {text!r}）")
    year, month = int(match.group(1)), int(match.group(2))
    since = month_start(year, month, tz)
    until = month_start(year + month // 12, month % 12 + 1, tz)
    return StatsFilter(since=since, until=until, **where)


# --- deadlines -------------------------------------------------------------------------------

async def stamp_acceptance(session: AsyncSession, policy: ServicePolicy, batch: int = 500) -> int:
    """The part of :func:`stamp_deadlines` the inbox needs: new cases without their deadlines
    (cases are born with them, so this is one indexed look that finds nothing)."""
    rows = (await session.execute(
        select(ServiceCase.id, ServiceCase.created_at)
        .where(ServiceCase.status == "new", ServiceCase.accept_due_at.is_(None)).limit(batch)
    )).all()
    if rows:
        calendar = policy.calendar
        await session.execute(update(ServiceCase), [
            {"id": case_id,
             "accept_due_at": calendar.add_working_hours(created, policy.escalation_hours),
             "resolve_due_at": calendar.add_working_days(created, policy.completion_working_days)}
            for case_id, created in rows
        ])
    return len(rows)


async def stamp_deadlines(session: AsyncSession, policy: ServicePolicy, batch: int = 5000) -> int:
    """Give each case its acceptance deadline (the escalation's working hours after opening),
    its completion deadline (``completion_working_days`` working days) and, once accepted, its
    first-response time. Runs in the periodic jobs and before the dashboard; a no-op when
    everything is stamped. Returns how many rows it wrote."""
    calendar = policy.calendar
    written = 0
    rows = (await session.execute(
        select(ServiceCase.id, ServiceCase.created_at).where(ServiceCase.accept_due_at.is_(None)).limit(batch)
    )).all()
    if rows:
        await session.execute(update(ServiceCase), [
            {"id": case_id,
             "accept_due_at": calendar.add_working_hours(created, policy.escalation_hours),
             "resolve_due_at": calendar.add_working_days(created, policy.completion_working_days)}
            for case_id, created in rows
        ])
        written += len(rows)
    answered = (await session.execute(
        select(ServiceCase.id, ServiceCase.created_at, ServiceCase.accepted_at)
        .where(ServiceCase.accepted_at.is_not(None), ServiceCase.first_response_seconds.is_(None)).limit(batch)
    )).all()
    if answered:
        await session.execute(update(ServiceCase), [
            {"id": case_id, "first_response_seconds": max(0, int((accepted - created).total_seconds()))}
            for case_id, created, accepted in answered if accepted is not None
        ])
        written += len(answered)
    return written


# --- the filtered set and the metrics ----------------------------------------------------------

def _case_scope(where: StatsFilter) -> list[ColumnElement[bool]]:
    """Site, domain and district (not the period: each metric says which date it counts by)."""
    clauses: list[ColumnElement[bool]] = []
    if where.domain:
        clauses.append(ServiceCase.domain == where.domain)
    if where.district:
        clauses.append(ServiceCase.district == where.district)
    if where.site_id:
        # The handler is coalesce(owner, assignee), written out: PostgreSQL has statistics on
        # the two columns but not on the expression, and on it guessed a site's cases so few that
        # it read a month's ratings through every case of the site (20 ms instead of 3).
        people = select(Commissioner.id).where(Commissioner.site_id == where.site_id)
        clauses.append(or_(ServiceCase.owner_id.in_(people),
                           and_(ServiceCase.owner_id.is_(None), ServiceCase.assignee_id.in_(people))))
    return clauses


def _in(column: Any, where: StatsFilter) -> ColumnElement[bool]:
    return and_(column >= where.since, column < where.until)


def _counted(where: StatsFilter) -> ColumnElement[bool]:
    """Cases opened in the period that are not cancelled: the base of both on-time rates."""
    return and_(_in(ServiceCase.created_at, where), ServiceCase.status != "cancelled")


def _case_metrics(where: StatsFilter, now: datetime) -> dict[str, ColumnElement[bool]]:
    """Every case-level figure of the dashboard, by name, as a predicate on ``service_case``."""
    counted = _counted(where)
    accept_due = and_(counted, or_(ServiceCase.accepted_at.is_not(None), ServiceCase.accept_due_at < now))
    resolve_due = and_(counted, or_(ServiceCase.resolved_at.is_not(None), ServiceCase.resolve_due_at < now))
    accept_on_time = and_(counted, ServiceCase.accepted_at <= ServiceCase.accept_due_at)
    resolve_on_time = and_(counted, ServiceCase.resolved_at <= ServiceCase.resolve_due_at)
    is_open = ServiceCase.status.in_(OPEN_STATUSES)
    late_accept = and_(ServiceCase.status == "new", ServiceCase.accept_due_at < now)
    late_resolve = and_(ServiceCase.status == "accepted", ServiceCase.resolve_due_at < now)
    soon = now + BREACH_WINDOW
    return {
        "opened": _in(ServiceCase.created_at, where),
        "accepted": _in(ServiceCase.accepted_at, where),
        "resolved": _in(ServiceCase.resolved_at, where),
        "accept_due": accept_due,
        "accept_on_time": accept_on_time,
        "accept_late": and_(accept_due, ~func.coalesce(ServiceCase.accepted_at <= ServiceCase.accept_due_at, False)),
        "resolve_due": resolve_due,
        "resolve_on_time": resolve_on_time,
        "resolve_late": and_(resolve_due,
                             ~func.coalesce(ServiceCase.resolved_at <= ServiceCase.resolve_due_at, False)),
        "open": is_open,
        "overdue": and_(is_open, or_(late_accept, late_resolve)),
        "breach": and_(is_open, or_(
            and_(ServiceCase.status == "new", ServiceCase.accept_due_at >= now, ServiceCase.accept_due_at < soon),
            and_(ServiceCase.status == "accepted", ServiceCase.resolve_due_at >= now,
                 ServiceCase.resolve_due_at < soon))),
    }


CASE_METRICS = ("opened", "accepted", "resolved", "accept_due", "accept_on_time", "accept_late", "resolve_due",
                "resolve_on_time", "resolve_late", "open", "overdue", "breach")
METRIC_LABELS = {
    "opened": "新增需求", "accepted": "签收", "resolved": "办结", "accept_due": "应签收",
    "accept_on_time": "及时签收", "accept_late": "超时签收", "resolve_due": "应办结",
    "resolve_on_time": "按时办结", "resolve_late": "超期办结", "open": "在办", "overdue": "已超期",
    "breach": "24小时内到期", "rated": "评价", "bad": "差评", "followup_in_time": "差评按时回访",
    "followup_late": "差评未按时回访", "followup_open": "差评回访中", "followup_due": "差评应回访",
    "followup_overdue": "差评回访已超期", "followup_rated": "回访已评价",
}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Workload:
    commissioner_id: int
    name: str
    opened: int
    resolved: int
    open_now: int
    median_first_response_s: float | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    where: StatsFilter
    counts: dict[str, int]
    levels: dict[int, int]  # score → count of ratings in the period
    followups: dict[str, int]  # total, in_time, late, open, overdue, rated
    workload: list[Workload]
    daily: list[tuple[date, int]]
    overdue: list[CaseRow] = field(default_factory=list)
    breach: list[CaseRow] = field(default_factory=list)
    gaps: list[KbGap] = field(default_factory=list)

    @property
    def rated(self) -> int:
        return sum(self.levels.values())

    @property
    def acceptance_rate(self) -> float | None:
        return _ratio(self.counts["accept_on_time"], self.counts["accept_due"])

    @property
    def completion_rate(self) -> float | None:
        return _ratio(self.counts["resolve_on_time"], self.counts["resolve_due"])

    @property
    def satisfaction_top3(self) -> float | None:
        """满意率, broad reading: 非常满意 + 满意 + 基本满意 over valid ratings."""
        return _ratio(self.levels[5] + self.levels[4] + self.levels[3], self.rated)

    @property
    def satisfaction_top2(self) -> float | None:
        """满意率, strict reading: 非常满意 + 满意 over valid ratings."""
        return _ratio(self.levels[5] + self.levels[4], self.rated)

    @property
    def average_score(self) -> float | None:
        return _ratio(sum(score * n for score, n in self.levels.items()), self.rated)

    @property
    def bad(self) -> int:
        return self.levels[1] + self.levels[2]

    @property
    def followup_in_time_rate(self) -> float | None:
        """差评按时回访率: answered by the deadline, over those answered or past it."""
        return _ratio(self.followups["in_time"], self.followups["due"])


def _followup_metrics(now: datetime) -> dict[str, ColumnElement[bool]]:
    replied = RatingFollowup.replied_at.is_not(None)
    return {
        # Answered, or past the deadline without an answer: what the in-time rate is taken over.
        "due": or_(replied, RatingFollowup.due_at < now),
        "in_time": and_(replied, RatingFollowup.replied_at <= RatingFollowup.due_at),
        "late": or_(RatingFollowup.replied_at > RatingFollowup.due_at,
                    and_(~replied, RatingFollowup.due_at < now)),
        "open": ~replied,
        "overdue": and_(~replied, RatingFollowup.due_at < now),
        "rated": RatingFollowup.enterprise_score.is_not(None),
    }


def _sum(predicate: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((predicate, 1), else_=0)), 0)


async def dashboard(session: AsyncSession, where: StatsFilter, now: datetime, tz: ZoneInfo,
                    list_limit: int = 20) -> Dashboard:
    """Every figure of the dashboard for ``where``, in a handful of aggregate statements."""
    scope = _case_scope(where)
    metrics = _case_metrics(where, now)
    counts, workload_rows, daily_counts = await _scan_cases(session, where, scope, metrics, tz)

    levels = dict.fromkeys(range(1, 6), 0)
    ratings = select(Rating.score, func.count()).where(_in(Rating.created_at, where)).group_by(Rating.score)
    if scope:  # the join only when a case filter needs it: without one it would read every case
        ratings = ratings.join(ServiceCase, ServiceCase.id == Rating.case_id).where(*scope)
    for score, n in (await session.execute(ratings)).all():
        if score in levels:
            levels[int(score)] = int(n)

    fmetrics = _followup_metrics(now)
    loops = (select(func.count(), *[_sum(p).label(k) for k, p in fmetrics.items()])
             .select_from(RatingFollowup).where(_in(RatingFollowup.created_at, where)))
    if scope:
        loops = loops.join(ServiceCase, ServiceCase.id == RatingFollowup.case_id).where(*scope)
    frow = (await session.execute(loops)).one()
    followups = {"total": int(frow[0]), **{k: int(frow._mapping[k]) for k in fmetrics}}

    workload = await _workload(session, where, scope, workload_rows)
    daily = _days(where, tz, daily_counts)
    overdue = await _cases(session, [metrics["overdue"], *scope], list_limit, due_order=True)
    breach = await _cases(session, [metrics["breach"], *scope], list_limit, due_order=True)
    gaps = list((await session.execute(
        select(KbGap).where(KbGap.handled_at.is_(None)).order_by(KbGap.count.desc(), KbGap.last_seen.desc())
        .limit(10)
    )).scalars())
    return Dashboard(where=where, counts=counts, levels=levels, followups=followups, workload=workload,
                     daily=daily, overdue=list(overdue), breach=list(breach), gaps=gaps)


async def _scan_cases(
    session: AsyncSession, where: StatsFilter, scope: list[ColumnElement[bool]],
    metrics: dict[str, ColumnElement[bool]], tz: ZoneInfo,
) -> tuple[dict[str, int], dict[int, dict[str, int]], dict[date, int]]:
    """One pass over the cases that matter (touched in the period, or open now), grouped by
    commissioner and day of opening: every count of the dashboard, the workload and the daily
    series are sums over these few hundred groups."""
    handler = func.coalesce(ServiceCase.owner_id, ServiceCase.assignee_id).label("cid")
    # The day only for cases opened in the period: the others (open cases of earlier months)
    # fall into one group per commissioner instead of one per day.
    day = case((metrics["opened"], _local_day(session, ServiceCase.created_at, tz, where.since)),
               else_=None).label("day")
    period = or_(metrics["opened"], metrics["accepted"], metrics["resolved"])
    rows = (await session.execute(
        select(handler, day, *[_sum(metrics[name]).label(name) for name in CASE_METRICS])
        .where(or_(period, ServiceCase.status.in_(OPEN_STATUSES)), *scope)
        .group_by(handler, day)
    )).all()
    counts = dict.fromkeys(CASE_METRICS, 0)
    people: dict[int, dict[str, int]] = {}
    daily: dict[date, int] = {}
    for cid, when, *sums in rows:
        values = dict(zip(CASE_METRICS, map(int, sums), strict=True))
        for name, value in values.items():
            counts[name] += value
        if cid is not None:
            mine = people.setdefault(int(cid), dict.fromkeys(("opened", "resolved", "open"), 0))
            for name in mine:
                mine[name] += values[name]
        if values["opened"] and when is not None:
            key = when if isinstance(when, date) else date.fromisoformat(str(when))
            daily[key] = daily.get(key, 0) + values["opened"]
    return counts, people, daily


async def _workload(session: AsyncSession, where: StatsFilter, scope: list[ColumnElement[bool]],
                    people: dict[int, dict[str, int]]) -> list[Workload]:
    opened = _in(ServiceCase.created_at, where)
    people = {cid: n for cid, n in people.items() if n["opened"] or n["resolved"] or n["open"]}
    # Median first response per commissioner, by window functions (SQLite ≥ 3.25 and PostgreSQL).
    ranked = (
        select(ServiceCase.owner_id.label("cid"), ServiceCase.first_response_seconds.label("s"),
               func.row_number().over(partition_by=ServiceCase.owner_id,
                                      order_by=ServiceCase.first_response_seconds).label("rn"),
               func.count().over(partition_by=ServiceCase.owner_id).label("n"))
        .where(opened, ServiceCase.owner_id.is_not(None), ServiceCase.first_response_seconds.is_not(None), *scope)
        .subquery()
    )
    medians = dict((await session.execute(
        select(ranked.c.cid, func.avg(ranked.c.s))
        .where(ranked.c.rn.in_([(ranked.c.n + 1) / 2, (ranked.c.n + 2) / 2]))
        .group_by(ranked.c.cid)
    )).all())
    names = dict((await session.execute(
        select(Commissioner.id, Commissioner.name).where(Commissioner.id.in_(list(people)))
    )).all()) if people else {}
    result = [
        Workload(commissioner_id=cid, name=names.get(cid, str(cid)), opened=n["opened"], resolved=n["resolved"],
                 open_now=n["open"], median_first_response_s=float(medians[cid]) if cid in medians else None)
        for cid, n in people.items()
    ]
    return sorted(result, key=lambda w: (-w.opened - w.open_now, w.name))


def _local_day(session: AsyncSession, column: Any, tz: ZoneInfo, at: datetime) -> Any:
    """The calendar day of ``column`` in the staff's time zone."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(tz.key, column), Date)
    offset = at.astimezone(tz).utcoffset() or timedelta()
    hours = int(offset.total_seconds() // 3600)
    return func.date(column, literal(f"{hours:+d} hours"))


def _days(where: StatsFilter, tz: ZoneInfo, counted: dict[date, int]) -> list[tuple[date, int]]:
    """Every day of the period with its count (zeros included), or only the counted days of a
    period too long to draw day by day."""
    first, last = where.since.astimezone(tz).date(), (where.until - timedelta(microseconds=1)).astimezone(tz).date()
    if (last - first).days > 400:
        return sorted(counted.items())
    return [(first + timedelta(days=i), counted.get(first + timedelta(days=i), 0))
            for i in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One line of a case list: what the lists show, read in one statement (no ORM loads)."""

    number: str
    domain: str
    district: str | None
    enterprise: str  # masked
    status: str
    handler: str | None  # the owner, else the assignee
    created_at: datetime
    accept_due_at: datetime | None
    resolve_due_at: datetime | None
    closed: bool

    @property
    def due_at(self) -> datetime | None:
        """The deadline that matters now: acceptance while new, else completion."""
        return self.accept_due_at if self.status == "new" else self.resolve_due_at


async def _cases(session: AsyncSession, clauses: Sequence[ColumnElement[bool]], limit: int, offset: int = 0,
                 due_order: bool = False) -> list[CaseRow]:
    """One page of cases: the page is chosen on ``service_case`` alone (the clauses name only
    it), then joined to the enterprise and the commissioner. Joining first let PostgreSQL, which
    misjudges how many cases an overdue predicate keeps, hash the whole enterprise table for 20
    rows (12 ms at 100,000 cases; this is a few)."""
    handler = func.coalesce(ServiceCase.owner_id, ServiceCase.assignee_id)
    order: tuple[Any, Any]
    if due_order:
        key: Any = case((ServiceCase.status == "new", ServiceCase.accept_due_at), else_=ServiceCase.resolve_due_at)
        order = (key, ServiceCase.id)
    else:
        key = ServiceCase.created_at
        order = (key.desc(), ServiceCase.id.desc())
    page = (select(ServiceCase.id.label("id"), key.label("k")).where(*clauses).order_by(*order)
            .limit(limit).offset(offset).subquery())
    stmt = (
        select(ServiceCase.number, ServiceCase.domain, ServiceCase.district, Enterprise.name, ServiceCase.status,
               Commissioner.name, ServiceCase.created_at, ServiceCase.accept_due_at, ServiceCase.resolve_due_at)
        .join(page, page.c.id == ServiceCase.id)
        .join(Enterprise, Enterprise.id == ServiceCase.enterprise_id)
        .outerjoin(Commissioner, Commissioner.id == handler)
        .order_by(*((page.c.k, page.c.id) if due_order else (page.c.k.desc(), page.c.id.desc())))
    )
    rows = (await session.execute(stmt)).all()
    return [CaseRow(number, domain, district, mask_company(company), status, person, created, accept_due,
                    resolve_due, status == "closed")
            for number, domain, district, company, status, person, created, accept_due, resolve_due in rows]


# --- drill-down --------------------------------------------------------------------------------

DRILL_RE = re.compile(r"^(?:level-[1-5]|commissioner-\d{1,9}|day-\d{4}-\d{2}-\d{2})$")


def metric_clauses(where: StatsFilter, metric: str, now: datetime, tz: ZoneInfo) -> list[ColumnElement[bool]]:
    """The cases behind one figure of the dashboard: the same predicate that counted them."""
    scope = _case_scope(where)
    metrics = _case_metrics(where, now)
    if metric in metrics:
        return [metrics[metric], *scope]
    rated = select(Rating.case_id).where(_in(Rating.created_at, where))
    if metric == "rated":
        return [ServiceCase.id.in_(rated), *scope]
    if metric.startswith("level-") and DRILL_RE.match(metric):
        return [ServiceCase.id.in_(rated.where(Rating.score == int(metric[6:]))), *scope]
    if metric == "bad":
        return [ServiceCase.id.in_(rated.where(Rating.score <= 2)), *scope]
    if metric.startswith("followup_") and metric[9:] in _followup_metrics(now):
        chosen = select(RatingFollowup.case_id).where(_in(RatingFollowup.created_at, where),
                                                      _followup_metrics(now)[metric[9:]])
        return [ServiceCase.id.in_(chosen), *scope]
    if metric.startswith("commissioner-") and DRILL_RE.match(metric):
        handler = func.coalesce(ServiceCase.owner_id, ServiceCase.assignee_id)
        return [handler == int(metric[13:]), or_(metrics["opened"], metrics["resolved"], metrics["open"]), *scope]
    if metric.startswith("day-") and DRILL_RE.match(metric):
        day = date.fromisoformat(metric[4:])
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        return [ServiceCase.created_at >= start, ServiceCase.created_at < start + timedelta(days=1),
                _in(ServiceCase.created_at, where), *scope]
    raise StatsError(f"未知的统计项：{metric}")


@dataclass(frozen=True, slots=True)
class CaseList:
    metric: str
    total: int
    cases: Sequence[CaseRow]
    page: int
    per_page: int


async def case_list(session: AsyncSession, where: StatsFilter, metric: str, now: datetime, tz: ZoneInfo,
                    page: int = 1, per_page: int = 50) -> CaseList:
    """One page of the cases behind ``metric`` (newest first; overdue lists by deadline)."""
    clauses = metric_clauses(where, metric, now, tz)
    total = int(await session.scalar(select(func.count()).select_from(ServiceCase).where(*clauses)) or 0)
    page = max(1, page)
    cases = await _cases(session, clauses, per_page, (page - 1) * per_page,
                         due_order=metric in ("overdue", "breach"))
    return CaseList(metric=metric, total=total, cases=cases, page=page, per_page=per_page)
