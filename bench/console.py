"""The manager's console on a year of work: 100,000 generated cases (with their events, ratings
and bad-rating follow-ups) in a scratch PostgreSQL database that this script creates and drops.

Measured as server time (the service call a page makes, without the network):
- the dashboard for one month (``stats.dashboard``: every figure, lists and charts' data);
- drill-down lists (one page of the cases behind a figure);
- the SQL an inbox and a case page would run (open cases of a commissioner, one case with its
  timeline) — the console helper's own pages are measured by its own bench;
- the monthly workbook (``reports.monthly_workbook``: three months of figures and four sheets).

Then the pages themselves over HTTP on localhost (``--pages``, the default): the inbox of a
commissioner, a site supervisor and a manager, a case page, the dashboard for the month and the
monthly workbook, signed in through the console's form, each timed as the round trip of a GET
(``/readyz`` alongside: one database round trip plus HTTP). The comparison, in the same run, is
with the state before migration 0011 and the rewrites: the 0011 indexes dropped, the inbox read
by a frozen copy of its earlier code (every new case in scope loaded, each deadline worked out in
Python; three statements per list) and the case page's lookup by its earlier code (a scope
check, then the case and each relation in a statement of its own).

Goals: p95 < 100 ms for pages, < 5 s for the workbook. The baseline of the service calls is the
same measurement with the indexes of migration 0008 dropped, in the same run (the machine is
shared: read ratios).

    .venv/bin/python bench/console.py [--cases 100000] [--runs 30] [--keep NAME] [--no-services]
                                      [--no-pages] [--admin-url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.console import inbox as inbox_module
from bot.console.inbox import DUE_SOON_HOURS, LIMIT, Inbox, Row
from bot.console.scope import Scope
from bot.services import cases, desk, reports, stats
from bot.services.case_states import OPEN_STATUSES
from bot.services.demo import load_demo
from bot.services.policy import ServicePolicy
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import (
    CaseEvent,
    Commissioner,
    Complaint,
    Enterprise,
    KbGap,
    LiveSession,
    Rating,
    RatingFollowup,
    ServiceCase,
)

DOMAINS = ("metrology", "standards", "testing", "certification", "quality", "ip", "branding")
DISTRICTS = ("思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区")
END = datetime(2026, 12, 1, tzinfo=UTC) - timedelta(hours=8)  # the end of November, Beijing
MONTH = "2026-11"
INDEXES_0008 = ("ix_service_case_created_at", "ix_service_case_accepted_at", "ix_service_case_resolved_at",
                "ix_service_case_status_accept_due",
                "ix_service_case_status_resolve_due", "ix_rating_created_at", "ix_rating_followup_created_at",
                "ix_rating_followup_status_due")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDEXES_0011 = {
    "ix_service_case_status_created": "service_case (status, created_at)",
    "ix_service_case_owner_status": "service_case (owner_id, status)",
    "ix_service_case_assignee_status": "service_case (assignee_id, status)",
    "ix_service_case_response_unstamped":
        "service_case (id) WHERE accepted_at IS NOT NULL AND first_response_seconds IS NULL",
}


async def generate(sessions: async_sessionmaker[AsyncSession], total: int, policy: ServicePolicy) -> None:
    """``total`` cases over the twelve months before END: cases older than a month are resolved
    and closed but for 0.5 % left behind; of the last month's, 60 % are done; ratings on 70 % of
    the resolved (about 8 % bad, each followed up, 90 % answered)."""
    rng = random.Random(15)
    calendar = policy.calendar
    async with transaction(sessions) as session:
        await load_demo(session)
        people = list((await session.execute(select(Commissioner.id))).scalars())
    enterprises = 20_000
    async with transaction(sessions) as session:
        await session.execute(Enterprise.__table__.insert(), [
            {"name": f"厦门测试企业{i}有限公司", "district": DISTRICTS[i % 6], "mobile": f"139{i:08d}",
             "created_at": END - timedelta(days=400), "updated_at": END - timedelta(days=400)}
            for i in range(enterprises)])
        first_enterprise = int(await session.scalar(select(Enterprise.id).order_by(Enterprise.id).limit(1)) or 1)
    span = 365 * 24 * 3600
    chunk = 5000
    case_id = 0
    for start in range(0, total, chunk):
        case_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        rating_rows: list[dict[str, Any]] = []
        followup_rows: list[dict[str, Any]] = []
        for n in range(start, min(total, start + chunk)):
            case_id += 1
            created = END - timedelta(seconds=rng.randrange(span))
            accepted = created + timedelta(minutes=rng.expovariate(1 / 180)) \
                if rng.random() < (0.97 if END - created < timedelta(days=30) else 0.999) else None
            # Old cases are done: an open one is recent, or (rarely) one left behind.
            recent = END - created < timedelta(days=30)
            done = rng.random() < (0.6 if recent else 0.995)
            resolved = accepted + timedelta(hours=rng.expovariate(1 / 100)) if accepted and done else None
            if accepted and accepted > END:
                accepted = resolved = None
            if resolved and resolved > END:
                resolved = None
            status = "closed" if resolved else ("accepted" if accepted else "new")
            owner = rng.choice(people)
            case_rows.append({
                "id": case_id, "number": f"QI-{created.year}-{n + 1:06d}",
                "enterprise_id": first_enterprise + n % enterprises,
                "domain": rng.choice(DOMAINS), "district": rng.choice(DISTRICTS), "status": status,
                "description": "生成的需求", "mode": "online", "assignee_id": owner,
                "owner_id": owner if accepted else None, "suggestions": {}, "created_at": created,
                "updated_at": resolved or accepted or created, "accepted_at": accepted, "resolved_at": resolved,
                "closed_at": resolved, "rating_round": 1 if resolved else 0,
                "accept_due_at": calendar.add_working_hours(created, policy.escalation_hours),
                "resolve_due_at": calendar.add_working_days(created, policy.completion_working_days),
                "first_response_seconds": int((accepted - created).total_seconds()) if accepted else None,
            })
            event_rows.append({"case_id": case_id, "kind": "created", "actor": "enterprise", "text": "",
                               "data": {}, "created_at": created})
            if accepted:
                event_rows.append({"case_id": case_id, "kind": "accepted", "actor": "commissioner:x", "text": "",
                                   "data": {}, "created_at": accepted})
            if resolved:
                event_rows.append({"case_id": case_id, "kind": "resolved", "actor": "commissioner:x", "text": "",
                                   "data": {}, "created_at": resolved})
                if rng.random() < 0.7:
                    score = rng.choices((5, 4, 3, 2, 1), weights=(60, 22, 10, 5, 3))[0]
                    rated = resolved + timedelta(hours=2)
                    rating_rows.append({"id": case_id, "case_id": case_id, "round": 1, "score": score,
                                        "commissioner_id": owner, "created_at": rated})
                    if score <= 2:
                        due = calendar.add_working_days(rated, policy.followup_working_days)
                        replied = rated + timedelta(days=rng.choice((1, 3, 9))) if rng.random() < 0.9 else None
                        followup_rows.append({
                            "rating_id": case_id, "case_id": case_id, "score": score,
                            "status": "replied" if replied else "open", "due_at": due, "replied_at": replied,
                            "created_at": rated})
        async with transaction(sessions) as session:
            await session.execute(ServiceCase.__table__.insert(), case_rows)
            await session.execute(CaseEvent.__table__.insert(), event_rows)
            if rating_rows:
                await session.execute(Rating.__table__.insert(), rating_rows)
            if followup_rows:
                await session.execute(RatingFollowup.__table__.insert(), followup_rows)
    async with transaction(sessions) as session:
        await session.execute(KbGap.__table__.insert(), [
            {"normalized": f"问题{i}", "sample": f"未能回答的问题{i}", "count": rng.randrange(1, 50),
             "first_seen": END - timedelta(days=30), "last_seen": END - timedelta(days=1)} for i in range(500)])
        await session.execute(text("SELECT setval(pg_get_serial_sequence('service_case', 'id'), :n)"), {"n": case_id})
        await session.execute(text("SELECT setval(pg_get_serial_sequence('rating', 'id'), :n)"), {"n": case_id})
        await session.execute(text("ANALYZE"))


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(p50, p95) in milliseconds over ``runs`` calls, after one warm-up call."""
    await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


async def measure(sessions: async_sessionmaker[AsyncSession], runs: int, policy: ServicePolicy,
                  label: str) -> dict[str, tuple[float, float]]:
    tz = policy.calendar.tz
    where = stats.month_filter(MONTH, tz)
    now = END

    def in_session(work: Callable[[AsyncSession], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            async with transaction(sessions) as session:
                return await work(session)
        return call

    async with transaction(sessions) as session:
        someone = int(await session.scalar(select(Commissioner.id).where(Commissioner.handle == "wang")) or 0)
        number = str(await session.scalar(
            select(ServiceCase.number).where(ServiceCase.created_at >= where.since).limit(1)))

    async def inbox(session: AsyncSession) -> Any:
        """The inbox's SQL: my open cases and the new ones waiting in my skills, oldest due first."""
        return (await session.execute(
            select(ServiceCase.id, ServiceCase.number, ServiceCase.status, ServiceCase.resolve_due_at)
            .where(ServiceCase.status.in_(OPEN_STATUSES),
                   (ServiceCase.owner_id == someone) | (ServiceCase.assignee_id == someone))
            .order_by(ServiceCase.resolve_due_at).limit(50))).all()

    results = {
        # The machine's state: one round trip to the database, the unit the other lines pay many times.
        "reference: SELECT 1 round trip": await timed(runs, in_session(lambda s: s.execute(text("SELECT 1")))),
        "dashboard, one month": await timed(runs, in_session(lambda s: stats.dashboard(s, where, now, tz))),
        "drill-down: opened, page 1": await timed(runs, in_session(
            lambda s: stats.case_list(s, where, "opened", now, tz))),
        "drill-down: completed late": await timed(runs, in_session(
            lambda s: stats.case_list(s, where, "resolve_late", now, tz))),
        "drill-down: 非常不满意": await timed(runs, in_session(
            lambda s: stats.case_list(s, where, "level-1", now, tz))),
        "drill-down: overdue now": await timed(runs, in_session(
            lambda s: stats.case_list(s, where, "overdue", now, tz))),
        "inbox SQL (one commissioner)": await timed(runs, in_session(inbox)),
        "case page SQL (case + timeline)": await timed(runs, in_session(lambda s: cases.get_case(s, number))),
        "monthly workbook": await timed(max(3, runs // 10), in_session(
            lambda s: reports.monthly_workbook(s, MONTH, now, tz))),
        "ledger rows, one month": await timed(max(3, runs // 10), in_session(
            lambda s: reports.ledger_rows(s, where, tz))),
    }
    print(f"\n{label}")
    for name, (p50, p95) in results.items():
        print(f"  {name:<34} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
    return results


# --- the pages over HTTP, against the state before migration 0011 and the inbox rewrite ---------

async def inbox_before(session: AsyncSession, scope: Scope, policy: ServicePolicy, now: datetime) -> Inbox:
    inbox = Inbox()
    calendar = policy.calendar
    me = scope.commissioner
    if me is not None:
        inbox.mine = [Row(c, _deadline_before(c, policy)) for c in await desk.open_cases(session, me, limit=LIMIT)]
    mine_ids = {r.case.id for r in inbox.mine}
    new_cases = (await session.execute(
        select(ServiceCase).where(ServiceCase.status == "new", scope.condition())
        .options(selectinload(ServiceCase.enterprise), selectinload(ServiceCase.assignee))
        .order_by(ServiceCase.created_at, ServiceCase.id).limit(500)
    )).scalars().all()
    soon = calendar.add_working_hours(now, DUE_SOON_HOURS)
    counts = {"overdue": 0, "due_soon": 0, "waiting": 0}
    for case in new_cases:
        deadline = _deadline_before(case, policy)
        row = Row(case, deadline)
        buckets = []
        if deadline is not None and deadline <= now:
            buckets.append("overdue")
        elif deadline is not None and deadline <= soon:
            buckets.append("due_soon")
        in_skills = scope.principal.role != "commissioner" or case.domain in scope.domains
        if case.id not in mine_ids and in_skills:
            buckets.append("waiting")
        for name in buckets:
            counts[name] += 1
            shown: list[Row] = getattr(inbox, name)
            if len(shown) < LIMIT:
                shown.append(row)
    inbox.totals = counts
    live_cases = (await session.execute(
        select(ServiceCase).join(LiveSession, LiveSession.case_id == ServiceCase.id)
        .where(LiveSession.status == "active", scope.condition())
        .options(selectinload(ServiceCase.enterprise)).order_by(LiveSession.last_activity_at.desc()).limit(LIMIT)
    )).scalars().unique().all()
    inbox.live = [Row(c) for c in live_cases]
    complaints = (select(Complaint, ServiceCase.number).outerjoin(ServiceCase, ServiceCase.id == Complaint.case_id)
                  .where(Complaint.status == "open").order_by(Complaint.id).limit(LIMIT))
    if not scope.principal.sees_all:  # complaints about no case go to the management institution
        complaints = complaints.where(Complaint.case_id.is_not(None), scope.condition())
    inbox.complaints = [(c, n) for c, n in (await session.execute(complaints)).all()]
    return inbox


def _deadline_before(case: ServiceCase, policy: ServicePolicy) -> datetime | None:
    if case.status != "new":
        return None
    return policy.calendar.add_working_hours(case.created_at, policy.escalation_hours)


async def visible_case_before(session: AsyncSession, scope: Scope, number: str) -> ServiceCase | None:
    """The case page's lookup before: the scope check, then the case and each relation apart."""
    from bot.console.scope import case_condition

    found = (await session.execute(
        select(ServiceCase.id).where(ServiceCase.number == number, case_condition(scope)))).scalar_one_or_none()
    if found is None:
        return None
    return (await session.execute(
        select(ServiceCase).where(ServiceCase.number == number.upper())
        .options(selectinload(ServiceCase.events), selectinload(ServiceCase.owner),
                 selectinload(ServiceCase.assignee), selectinload(ServiceCase.enterprise))
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def _set_0011_indexes(sessions: async_sessionmaker[AsyncSession], present: bool) -> None:
    async with transaction(sessions) as session:
        for name, definition in INDEXES_0011.items():
            await session.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}" if present
                                       else f"DROP INDEX IF EXISTS {name}"))
        await session.execute(text("ANALYZE service_case"))


async def measure_pages(url: str, sessions: async_sessionmaker[AsyncSession], runs: int) -> None:
    """Each page's p50/p95 over HTTP, before (0011 indexes dropped, the earlier inbox) and after."""
    import sys
    import tempfile

    sys.path.insert(0, ROOT)  # tests.helpers: accounts, sign-in
    from bot.app import create_app
    from bot.config import load_settings
    from bot.runtime import Runtime
    from tests.helpers.console import add_accounts, sign_in

    settings = load_settings(environ={"QIBOT_DATA_DIR": tempfile.mkdtemp(), "QIBOT_EMBEDDINGS": "0",
                                      "QIBOT_DATABASE_URL": url})
    runtime = await Runtime.start(settings)
    runtime.dialogue.clock = lambda: END
    async with transaction(sessions) as session:
        has_accounts = await session.scalar(text("SELECT count(*) FROM staff_account"))
        number = str(await session.scalar(select(ServiceCase.number).where(
            ServiceCase.created_at >= END - timedelta(days=10)).order_by(ServiceCase.id).limit(1)))
    if not has_accounts:
        await add_accounts(runtime)
    paths = {"readyz (reference)": "/readyz", "inbox": "/console/", "case page": f"/console/cases/{number}",
             "dashboard, one month": f"/console/manage/?month={MONTH}",
             "monthly workbook": f"/console/manage/report.xlsx?month={MONTH}"}
    people = {"wang": ("readyz (reference)", "inbox", "case page"),
              "chen": ("inbox", "case page", "dashboard, one month"),
              "boss": ("inbox", "case page", "dashboard, one month", "monthly workbook")}
    from bot.console import views_cases

    current, current_case = inbox_module.load, views_cases.visible_case
    cycles = max(1, min(5, runs // 5))  # before and after alternate, so both meet the same load on a shared machine
    samples: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    # CPU of this process per request (the server and the test client share it; PostgreSQL's own
    # work is not in it): what a loaded machine does not inflate the way it inflates wall time.
    cpu_ms: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    clients: dict[str, TestClient[Any, Any]] = {}
    try:
        for login in people:
            client = TestClient(TestServer(create_app(settings, runtime)), cookie_jar=CookieJar(unsafe=True))
            await client.start_server()
            clients[login] = client
            assert (await sign_in(client, login)).status == 303
        for cycle in range(cycles):
            for label in ("after", "before"):
                before = label == "before"
                await _set_0011_indexes(sessions, present=not before)
                inbox_module.load = inbox_before if before else current
                views_cases.visible_case = visible_case_before if before else current_case
                for login, names in people.items():
                    for name in names:
                        workbook = "workbook" in name
                        if workbook and cycle % 2:
                            continue  # the workbook is slow: every other cycle
                        path = paths[name]
                        await (await clients[login].get(path)).read()  # warm after the switch
                        for _ in range(max(1, runs // cycles // (5 if workbook else 1))):
                            started, cpu = time.perf_counter(), time.process_time()
                            response = await clients[login].get(path)
                            await response.read()
                            assert response.status == 200, (path, response.status)
                            samples[label].setdefault(f"{login:<5} {name}", []).append(
                                (time.perf_counter() - started) * 1000)
                            cpu_ms[label].setdefault(f"{login:<5} {name}", []).append(
                                (time.process_time() - cpu) * 1000)
            print(f"cycle {cycle + 1}/{cycles} done; load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        inbox_module.load, views_cases.visible_case = current, current_case
        await _set_0011_indexes(sessions, present=True)
        for client in clients.values():
            await client.close()
        await runtime.close()

    def p50_p95(values: list[float]) -> tuple[float, float]:
        ordered = sorted(values)
        return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    print(f"\npages over HTTP ({cycles} alternating cycles; n = samples per state)")
    print(f"  {'':<28} {'before p50':>10} {'p95':>8}   {'after p50':>9} {'p95':>8}   p95 ratio"
          f"   CPU p50 before → after  n")
    for name, values in samples["after"].items():
        (b50, b95), (a50, a95) = p50_p95(samples["before"][name]), p50_p95(values)
        c_before, c_after = statistics.median(cpu_ms["before"][name]), statistics.median(cpu_ms["after"][name])
        print(f"  {name:<28} {b50:10.1f} {b95:8.1f}   {a50:9.1f} {a95:8.1f}   {b95 / a95:8.2f}x"
              f"   {c_before:6.1f} → {c_after:5.1f} ms  {len(values)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--admin-url", default=os.environ.get("TEST_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--keep", metavar="NAME", help="use (and keep) this scratch database; generate only once")
    parser.add_argument("--no-services", action="store_true", help="skip the service calls (0008 comparison)")
    parser.add_argument("--no-pages", action="store_true", help="skip the pages over HTTP (0011 comparison)")
    args = parser.parse_args()
    admin = args.admin_url.replace("postgresql+asyncpg://", "postgresql://")
    name = args.keep or f"qibot_bench_console_{os.getpid()}"
    conn = await asyncpg.connect(admin)
    exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    if not exists:
        await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    engine = None
    try:
        await db.upgrade(url)
        engine = db.create_engine(url)
        sessions = db.session_factory(engine)
        policy = ServicePolicy()
        started = time.perf_counter()
        if not exists:
            await generate(sessions, args.cases, policy)
        async with transaction(sessions) as session:
            month_cases = await session.scalar(select(text("count(*)")).select_from(ServiceCase).where(
                ServiceCase.created_at >= stats.month_filter(MONTH, policy.calendar.tz).since))
        print(f"generated {args.cases} cases in {time.perf_counter() - started:.0f} s "
              f"({month_cases} in {MONTH}); machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if not args.no_pages:
            await measure_pages(url, sessions, args.runs)
        if args.no_services:
            return
        with_indexes = await measure(sessions, args.runs, policy, "with the indexes of migration 0008")
        if not args.keep:
            async with transaction(sessions) as session:
                for index in INDEXES_0008:
                    await session.execute(text(f"DROP INDEX {index}"))
                await session.execute(text("ANALYZE"))
            without = await measure(sessions, args.runs, policy, "baseline: the same without those indexes")
            print("\nratio p95 (baseline / with indexes)")
            for key, (_, p95) in with_indexes.items():
                print(f"  {key:<34} {without[key][1] / p95:6.2f}x")
        print(f"\ngoals: pages p95 < 100 ms, workbook < 5000 ms; load now {os.getloadavg()[0]:.1f}")
    finally:
        if engine is not None:
            await engine.dispose()
        if not args.keep:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
