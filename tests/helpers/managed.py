"""A known month of work for the manager's figures: cases opened, accepted, resolved and rated at
set moments, so each figure of the dashboard and the workbook has an answer computed by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import cases, ratings, stats
from bot.services.demo import load_demo
from bot.services.policy import ServicePolicy
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Enterprise, ServiceCase

# Monday 2026-11-02 09:00 Beijing: the first working day of the fixture month.
MONTH = "2026-11"
DAY1 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 Beijing, the end of the month


@dataclass
class Fixture:
    """What was built, by hand: the expected figures."""

    numbers: dict[str, str]
    opened: int = 0
    accepted: int = 0
    resolved: int = 0
    accept_on_time: int = 0
    accept_due: int = 0
    resolve_on_time: int = 0
    resolve_due: int = 0


async def open_sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await db.upgrade(url)
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    try:
        yield sessions
    finally:
        await engine.dispose()


async def _person(session: AsyncSession, handle: str) -> Commissioner:
    return (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one()


async def _open(session: AsyncSession, at: datetime, domain: str = "metrology", district: str = "湖里区",
                mobile: str = "13912345678") -> ServiceCase:
    enterprise = Enterprise(name="厦门示例精密仪器有限公司", district=district, mobile=mobile,
                            credit_code="91350200MA2XYZ1234", contact_name="陈小红")
    session.add(enterprise)
    await session.flush()
    case = await cases.open_case(session, enterprise=enterprise, identity=None, domain=domain,
                                 description=f"加油机检定，联系 {mobile}", mode="online", district=district, now=at)
    return await cases.require_case(session, case.number)


async def build_month(sessions: async_sessionmaker[AsyncSession], policy: ServicePolicy) -> Fixture:
    """Five cases in November 2026 (and one in October, one in November 2025 for the 环比/同比):

    - A: accepted after 1 h, resolved after 2 days, rated 5 (非常满意);
    - B: accepted after 1 h, resolved after 2 days, rated 3 (基本满意);
    - C: accepted after 2 days (late: 4 working hours), resolved after 20 days (late: 10 working
      days), rated 1 (非常不满意): a follow-up opens;
    - D: never accepted (overdue for acceptance at NOW);
    - E (testing, 思明区): accepted after 1 h, still open, not yet due.
    """
    fx = Fixture(numbers={})
    async with transaction(sessions) as session:
        await load_demo(session)
    async with transaction(sessions) as session:
        wang = await _person(session, "wang")
        plan = [("A", DAY1, 1, 48, 5), ("B", DAY1 + timedelta(hours=1), 1, 48, 3),
                ("C", DAY1 + timedelta(hours=2), 48, 20 * 24, 1), ("D", NOW - timedelta(days=3), None, None, None)]
        for name, at, accept_h, resolve_h, score in plan:
            case = await _open(session, at)
            fx.numbers[name] = case.number
            if accept_h is not None:
                await cases.accept(session, case, wang, at + timedelta(hours=accept_h))
            if resolve_h is not None:
                await cases.resolve(session, case, wang, "已完成", at + timedelta(hours=resolve_h))
                await ratings.record_rating(session, case, score, at + timedelta(hours=resolve_h + 1),
                                            policy=policy)
        e = await _open(session, NOW - timedelta(hours=2), domain="testing", district="思明区")
        await cases.accept(session, e, wang, NOW - timedelta(hours=1))
        fx.numbers["E"] = e.number
        october = await _open(session, datetime(2026, 10, 14, 2, 0, tzinfo=UTC))
        fx.numbers["Oct"] = october.number
        last_year = await _open(session, datetime(2025, 11, 12, 2, 0, tzinfo=UTC))
        await cases.accept(session, last_year, wang, datetime(2025, 11, 12, 3, 0, tzinfo=UTC))
        fx.numbers["LastYear"] = last_year.number
        await stats.stamp_deadlines(session, policy)
    fx.opened, fx.accepted, fx.resolved = 5, 4, 3
    # Acceptance: A, B, E on time; C late; D overdue (its deadline passed) → 3 of 5.
    fx.accept_on_time, fx.accept_due = 3, 5
    # Completion (10 working days): A, B on time, C late; D and E not due yet → 2 of 3.
    fx.resolve_on_time, fx.resolve_due = 2, 3
    return fx
