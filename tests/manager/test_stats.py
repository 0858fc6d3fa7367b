"""The dashboard's figures and their drill-downs, on SQLite and PostgreSQL: counted by SQL,
checked against a month built by hand (tests/helpers/managed.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import stats
from bot.services.policy import ServicePolicy
from bot.storage.db import transaction
from tests.helpers.managed import MONTH, NOW, build_month


async def test_the_month_in_figures(sessions: async_sessionmaker[AsyncSession], policy: ServicePolicy) -> None:
    fx = await build_month(sessions, policy)
    tz = policy.calendar.tz
    async with transaction(sessions) as session:
        board = await stats.dashboard(session, stats.month_filter(MONTH, tz), NOW, tz)
    assert (board.counts["opened"], board.counts["accepted"], board.counts["resolved"]) == (
        fx.opened, fx.accepted, fx.resolved)
    assert (board.counts["accept_on_time"], board.counts["accept_due"]) == (fx.accept_on_time, fx.accept_due)
    assert (board.counts["resolve_on_time"], board.counts["resolve_due"]) == (fx.resolve_on_time, fx.resolve_due)
    assert board.acceptance_rate == 3 / 5 and board.completion_rate == 2 / 3
    assert board.levels == {5: 1, 4: 0, 3: 1, 2: 0, 1: 1}
    assert board.satisfaction_top3 == 2 / 3 and board.satisfaction_top2 == 1 / 3
    assert board.bad == 1 and board.followups["total"] == 1 and board.followups["open"] == 1
    # C's follow-up is past its deadline (5 working days) unanswered: due, late, overdue.
    assert board.followups["due"] == 1 and board.followups["overdue"] == 1 and board.followup_in_time_rate == 0
    # Overdue is about now, whatever the period: the open October and last-year cases too.
    assert [c.number for c in board.overdue] == [fx.numbers["LastYear"], fx.numbers["Oct"], fx.numbers["D"]]
    assert board.counts["open"] == 4 and board.counts["overdue"] == 3
    people = {w.name: w for w in board.workload}
    wang = people["王明（示例）"]
    # Wang accepted A, B, C, E (and last year's case, still open); D waits with its assignee.
    assert (wang.opened, wang.resolved, wang.open_now) == (4, 3, 2)
    assert sum(w.opened for w in board.workload) == 5
    # A, B, E answered in 1 h, C in 48 h: the median of 1, 1, 1, 48 hours is 1 h.
    assert wang.median_first_response_s == 3600
    assert sum(n for _, n in board.daily) == 5 and len(board.daily) == 30


async def test_every_figure_drills_down_to_the_cases_it_counted(
    sessions: async_sessionmaker[AsyncSession], policy: ServicePolicy
) -> None:
    fx = await build_month(sessions, policy)
    tz = policy.calendar.tz
    where = stats.month_filter(MONTH, tz)
    async with transaction(sessions) as session:
        board = await stats.dashboard(session, where, NOW, tz)
        for metric in ("opened", "accepted", "resolved", "accept_on_time", "accept_late", "resolve_due",
                       "resolve_on_time", "resolve_late", "overdue"):
            listed = await stats.case_list(session, where, metric, NOW, tz)
            assert listed.total == board.counts[metric], metric
        for name in ("due", "in_time", "late", "open", "overdue", "rated"):
            listed = await stats.case_list(session, where, f"followup_{name}", NOW, tz)
            assert listed.total == board.followups[name], name
        late = await stats.case_list(session, where, "accept_late", NOW, tz)
        assert {c.number for c in late.cases} == {fx.numbers["C"], fx.numbers["D"]}
        worst = await stats.case_list(session, where, "level-1", NOW, tz)
        assert [c.number for c in worst.cases] == [fx.numbers["C"]]
        followed = await stats.case_list(session, where, "followup_open", NOW, tz)
        assert [c.number for c in followed.cases] == [fx.numbers["C"]]


async def test_filters_by_domain_district_and_site(
    sessions: async_sessionmaker[AsyncSession], policy: ServicePolicy
) -> None:
    await build_month(sessions, policy)
    tz = policy.calendar.tz
    async with transaction(sessions) as session:
        testing = await stats.dashboard(session, stats.month_filter(MONTH, tz, domain="testing"), NOW, tz)
        siming = await stats.dashboard(session, stats.month_filter(MONTH, tz, district="思明区"), NOW, tz)
        elsewhere = await stats.dashboard(session, stats.month_filter(MONTH, tz, site_id=999), NOW, tz)
    assert testing.counts["opened"] == 1 and siming.counts["opened"] == 1
    assert elsewhere.counts["opened"] == 0 and elsewhere.rated == 0


def test_a_bad_month_is_refused_with_the_format() -> None:
    import pytest

    for bad in ("2026-13", "11-2026", "2026/11", ""):
        with pytest.raises(stats.StatsError, match="YYYY-MM"):
            stats.month_filter(bad, ServicePolicy().calendar.tz)
