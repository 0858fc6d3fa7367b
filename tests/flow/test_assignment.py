"""Matching and numbering: the best commissioner by skill, district and load; unique numbers
under concurrency on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.runtime import Runtime
from bot.services import cases, matching
from bot.services.demo import load_demo
from bot.services.numbering import CASE_SERIES, next_number
from bot.storage import db
from bot.storage.db import transaction
from bot.storage.models import Commissioner, Enterprise, Expert, Institution
from tests.helpers.cases import new_case
from tests.helpers.clock import START

NOW = START




async def test_skill_first_then_district_then_load_then_longest_idle(flow_runtime: Runtime) -> None:
    # ip: lin (海沧, ip+branding) and huang (翔安, quality+certification+ip) are skilled.
    first = await new_case(flow_runtime, "ip", "海沧区")
    assert first.assignee is not None and first.assignee.handle == "lin"  # local and skilled
    second = await new_case(flow_runtime, "ip", "翔安区")
    assert second.assignee is not None and second.assignee.handle == "huang"  # local there
    # Under load: a 海沧 demand prefers the local lin until lin carries more than the district
    # penalty (2) over huang: lin 1→2→3→4 (the 3-vs-3 tie goes to the lower id), then huang.
    for _ in range(3):
        taken = await new_case(flow_runtime, "ip", "海沧区")
        assert taken.assignee is not None and taken.assignee.handle == "lin"
    busy = await new_case(flow_runtime, "ip", "海沧区")
    async with flow_runtime.sessions() as session:
        load = await matching.open_load(session)
        people = {c.handle: c.id for c in (await session.execute(select(Commissioner))).scalars()}
    assert load[people["lin"]] == 4
    assert busy.assignee is not None and busy.assignee.handle == "huang"
    assert load[people["huang"]] == 2


async def test_ties_go_to_the_commissioner_idle_longest(flow_runtime: Runtime) -> None:
    # metrology in 思明: wang (center, 思明) is local; make wang and zhang equal by district
    async with transaction(flow_runtime.sessions) as session:
        people = {c.handle: c for c in (await session.execute(select(Commissioner))).scalars()}
        people["wang"].last_assigned_at = NOW - timedelta(hours=1)
        people["zhang"].last_assigned_at = NOW - timedelta(days=3)
    case = await new_case(flow_runtime, "metrology", "外地城市")  # nobody is local: district is a tie
    assert case.assignee is not None and case.assignee.handle == "zhang"


async def test_an_on_duty_commissioner_beats_a_local_one_who_is_off_duty(flow_runtime: Runtime) -> None:
    async with transaction(flow_runtime.sessions) as session:
        for person in (await session.execute(select(Commissioner))).scalars():
            if person.handle == "wang":  # the local metrology commissioner of 思明
                person.on_duty = False
            if person.handle == "zhang":
                person.active = False
    case = await new_case(flow_runtime, "metrology", "思明区")
    # zhang is inactive, xu is off duty (demo data): wang, off duty but skilled, still beats
    # on-duty commissioners without the skill; between wang and xu the local one wins.
    assert case.assignee is not None and case.assignee.handle == "wang"
    async with transaction(flow_runtime.sessions) as session:
        for person in (await session.execute(select(Commissioner))).scalars():
            if person.handle == "xu":
                person.on_duty = True
    case = await new_case(flow_runtime, "metrology", "思明区")
    assert case.assignee is not None and case.assignee.handle == "xu"  # on duty and skilled


async def test_suggestions_skip_retired_institutions_and_suspended_experts(flow_runtime: Runtime) -> None:
    case = await new_case(flow_runtime, "testing", "集美区")
    names = [i["name"] for i in case.suggestions["institutions"]]
    assert "厦门市产品质量监督检验院" in names
    assert all("已退出" not in n for n in names)
    quality = await new_case(flow_runtime, "quality", "集美区")
    assert all(e["name"] != "郑工（示例）" for e in quality.suggestions["experts"])
    async with flow_runtime.sessions() as session:
        retired = await session.scalar(select(Institution).where(Institution.status == "retired"))
        suspended = await session.scalar(select(Expert).where(Expert.status == "suspended"))
    assert retired is not None and suspended is not None


async def test_numbers_continue_per_year_and_restart_in_a_new_year(flow_runtime: Runtime) -> None:
    async with transaction(flow_runtime.sessions) as session:
        a = await next_number(session, CASE_SERIES, 2026)
        b = await next_number(session, CASE_SERIES, 2026)
        c = await next_number(session, CASE_SERIES, 2027)
    assert (a, b, c) == ("QI-2026-000001", "QI-2026-000002", "QI-2027-000001")


async def test_fifty_concurrent_intakes_get_unique_numbers_on_postgresql(postgres_url: str) -> None:
    await db.upgrade(postgres_url)
    engine = db.create_engine(postgres_url)
    sessions = db.session_factory(engine)
    try:
        async with transaction(sessions) as session:
            await load_demo(session)

        async def intake(i: int) -> str:
            async with transaction(sessions) as session:
                enterprise = Enterprise(name=f"并发测试企业{i}", district="湖里区")
                session.add(enterprise)
                await session.flush()
                case = await cases.open_case(session, enterprise=enterprise, identity=None, domain="testing",
                                             description=f"需求{i}", mode="online", district="湖里区", now=NOW)
                return case.number

        numbers = await asyncio.gather(*(intake(i) for i in range(50)))
        assert len(set(numbers)) == 50
        assert sorted(numbers) == [f"QI-2026-{n:06d}" for n in range(1, 51)]  # gap-free too
    finally:
        await engine.dispose()


async def _set(runtime: Runtime, handle: str, **values: object) -> None:
    async with transaction(runtime.sessions) as session:
        person = (await session.execute(select(Commissioner).where(Commissioner.handle == handle))).scalar_one()
        for key, value in values.items():
            setattr(person, key, value)


async def test_a_commissioner_at_capacity_gets_no_new_case_while_another_has_room(flow_runtime: Runtime) -> None:
    # metrology in 思明: wang is local (the centre) and skilled; zhang (集美) is skilled but not local.
    await _set(flow_runtime, "wang", max_open_cases=1)
    first = await new_case(flow_runtime, "metrology", "思明区")
    assert first.assignee is not None and first.assignee.handle == "wang"  # room for one
    second = await new_case(flow_runtime, "metrology", "思明区")
    assert second.assignee is not None and second.assignee.handle == "zhang"  # wang is full
    # Capacity raised: wang (local, 1 open) is preferred again over zhang despite equal load + penalty.
    await _set(flow_runtime, "wang", max_open_cases=5)
    third = await new_case(flow_runtime, "metrology", "思明区")
    assert third.assignee is not None and third.assignee.handle == "wang"


async def test_when_every_skilled_one_is_full_the_case_is_still_assigned(flow_runtime: Runtime) -> None:
    # branding: chen (思明, supervisor) and lin (海沧); both full → the less loaded, not nobody.
    await _set(flow_runtime, "chen", max_open_cases=1)
    await _set(flow_runtime, "lin", max_open_cases=1)
    taken = [await new_case(flow_runtime, "branding", "海沧区") for _ in range(3)]
    handles = [c.assignee.handle for c in taken if c.assignee is not None]
    assert handles[:2] == ["lin", "chen"]  # lin (local) fills up, then chen has room
    assert len(handles) == 3 and handles[2] in ("lin", "chen")


async def test_districts_served_beyond_the_site_make_a_commissioner_local(flow_runtime: Runtime) -> None:
    # metrology in 同安: xu (同安) is off duty; wang (思明) and zhang (集美) tie on distance,
    # so a district served by zhang makes zhang local.
    await _set(flow_runtime, "zhang", districts=["同安区"], last_assigned_at=NOW)
    case = await new_case(flow_runtime, "metrology", "同安区")
    assert case.assignee is not None and case.assignee.handle == "zhang"


async def test_a_handle_of_unicode_digits_is_no_commissioner(flow_runtime: Runtime) -> None:
    async with flow_runtime.sessions() as session:  # "²".isdigit() is True; int("²") raised (a 500 in the console)
        assert await matching.find_commissioner(session, "²") is None
        assert await matching.find_commissioner(session, "１") is None
