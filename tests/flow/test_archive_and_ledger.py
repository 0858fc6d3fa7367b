"""Archives are frozen, masked on export and kept for the retention period; the ledger filters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.runtime import Runtime
from bot.services import archive, cases, ratings
from bot.storage.db import transaction
from bot.storage.models import Commissioner
from tests.helpers.cases import new_case
from tests.helpers.clock import Clock


async def closed_case(runtime: Runtime, clock: Clock) -> str:
    case = await new_case(runtime, "metrology", "湖里区", at=clock())
    async with transaction(runtime.sessions) as session:
        found = await cases.require_case(session, case.number)
        found.enterprise.mobile, found.enterprise.credit_code = "13812345678", "91110000802100433B"
        actor = await session.get(Commissioner, found.assignee_id)
        assert actor is not None
        await cases.accept(session, found, actor, clock())
        await cases.resolve(session, found, actor, "已完成，联系电话13812345678", clock())
        await ratings.record_rating(session, found, 4, clock())
    return case.number


async def test_a_closed_case_is_archived_masked_on_export_and_kept_three_years(
    flow_runtime: Runtime, clock: Clock
) -> None:
    number = await closed_case(flow_runtime, clock)
    async with flow_runtime.sessions() as session:
        stored = await archive.get_archive(session, number)
    assert stored is not None
    assert stored.content["enterprise"]["mobile"] == "13812345678"  # the archive itself is complete
    assert [e["kind"] for e in stored.content["timeline"]][-2:] == ["rated", "closed"]
    assert stored.content["ratings"][0]["score"] == 4
    exported = archive.masked_export(stored)
    text = str(exported)
    assert "13812345678" not in text and "138****5678" in text
    assert "91110000802100433B" not in text
    assert len(exported["sha256_of_original"]) == 64

    clock.advance(days=365 * 3 - 1)
    with pytest.raises(cases.CaseError, match="拒绝删除"):
        async with transaction(flow_runtime.sessions) as session:
            await archive.delete_archive(session, number, clock())
    async with flow_runtime.sessions() as session:
        assert await archive.get_archive(session, number) is not None  # refused means kept
    clock.advance(days=3)
    async with transaction(flow_runtime.sessions) as session:
        await archive.delete_archive(session, number, clock())
    async with flow_runtime.sessions() as session:
        assert await archive.get_archive(session, number) is None


async def test_ledger_filters_by_domain_district_status_commissioner_and_date(
    flow_runtime: Runtime, clock: Clock
) -> None:
    await closed_case(flow_runtime, clock)
    clock.advance(days=2)
    await new_case(flow_runtime, "ip", "海沧区", at=clock())
    await new_case(flow_runtime, "testing", "湖里区", at=clock())
    async with flow_runtime.sessions() as session:
        everything = await cases.ledger(session, cases.LedgerFilter())
        metrology = await cases.ledger(session, cases.LedgerFilter(domain="metrology"))
        haicang = await cases.ledger(session, cases.LedgerFilter(district="海沧区"))
        closed = await cases.ledger(session, cases.LedgerFilter(status="closed"))
        recent = await cases.ledger(session, cases.LedgerFilter(since=clock() - timedelta(days=1)))
        lin = await matching_id(session, "lin")
        by_lin = await cases.ledger(session, cases.LedgerFilter(commissioner_id=lin))
    assert len(everything) == 3
    assert [c.domain for c in metrology] == ["metrology"]
    assert [c.domain for c in haicang] == ["ip"]
    assert [c.status for c in closed] == ["closed"]
    assert {c.domain for c in recent} == {"ip", "testing"}
    assert [c.domain for c in by_lin] == ["ip"]


async def matching_id(session, handle: str) -> int:
    from bot.services.matching import find_commissioner

    person = await find_commissioner(session, handle)
    assert person is not None
    return person.id
