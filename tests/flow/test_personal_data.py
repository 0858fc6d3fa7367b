"""Issue 13, point 7: a person's request for a copy of their data or its erasure (``qibot
enterprise export|erase``): erasure keeps what the 3-year archive rule requires, masked, removes
the rest, and every request is audited."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.services import cases, consent, enterprises, personal_data
from bot.services.cases import CaseError
from bot.storage.db import transaction
from bot.storage.models import (
    CaseArchive,
    CaseEvent,
    ChannelIdentity,
    Enterprise,
    MessageLog,
    PrivacyConsent,
    PrivacyRequest,
    ServiceCase,
)
from tests.helpers.chat import Chat
from tests.helpers.cli import invoke
from tests.helpers.clock import Clock

MOBILE, CODE = "13812345678", "91110000802100433B"


async def served_and_archived(runtime: Runtime, clock: Clock) -> Chat:
    """An enterprise whose demand was taken, served, rated and archived (QI-2026-000001), and a
    second one it cancelled (QI-2026-000002)."""
    chat = Chat(runtime, user="shop")
    await chat.say(f"你好，我的手机是 {MOBILE}")
    async with transaction(runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity))).scalar_one()
        enterprise = await enterprises.enterprise_for(session, identity)
        enterprises.update_profile(enterprise, {"name": "厦门示例超市有限公司", "credit_code": CODE,
                                                "contact_name": "林店长", "mobile": MOBILE, "district": "湖里区"})
        await consent.record(session, identity, purpose="intake", method="provided", now=clock())
        for description in ("电子秤需要检定，联系林店长", "加油机需要检定"):
            await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                                  description=description, mode="onsite", district="湖里区", now=clock())
        case = await cases.require_case(session, "QI-2026-000001")
        actor = await cases.commissioner_for_action(session, case, None)
        await cases.accept(session, case, actor, clock())
        await cases.resolve(session, case, actor, f"已检定，联系人林店长 {MOBILE} 确认", clock())
        await cases.cancel_by_enterprise(session, await cases.require_case(session, "QI-2026-000002"), clock())
    await runtime.dispatcher.run_once()
    await chat.say("5")
    await chat.say("林店长说很满意")
    async with runtime.sessions() as session:
        assert (await cases.require_case(session, "QI-2026-000001")).status == "closed"
        assert (await session.execute(select(func.count(CaseArchive.id)))).scalar_one() == 1
    return chat


async def scalar(runtime: Runtime, stmt) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def test_export_gives_the_person_everything_in_clear(flow_runtime: Runtime, clock: Clock) -> None:
    await served_and_archived(flow_runtime, clock)
    async with transaction(flow_runtime.sessions) as session:
        found = await personal_data.find(session, personal_data.Subject(mobile="138-1234-5678"))
        data = await personal_data.export(session, found, clock())
    [enterprise] = data["enterprises"]
    assert enterprise["profile"]["mobile"] == MOBILE and enterprise["profile"]["contact_name"] == "林店长"
    assert [c["number"] for c in enterprise["cases"]] == ["QI-2026-000001", "QI-2026-000002"]
    assert enterprise["consents"][0]["purpose"] == "intake"
    assert any(MOBILE in m["text"] for m in enterprise["messages"])


async def test_erasure_is_refused_while_a_case_is_being_handled(flow_runtime: Runtime, clock: Clock) -> None:
    await Chat(flow_runtime, user="busy").say("你好")
    async with transaction(flow_runtime.sessions) as session:
        identity = (await session.execute(select(ChannelIdentity))).scalar_one()
        enterprise = await enterprises.enterprise_for(session, identity)
        enterprise.credit_code = CODE
        await cases.open_case(session, enterprise=enterprise, identity=identity, domain="metrology",
                              description="电子秤需要检定", mode="onsite", district="湖里区", now=clock())
    async with transaction(flow_runtime.sessions) as session:
        found = await personal_data.find(session, personal_data.Subject(credit_code=CODE))
        with pytest.raises(CaseError, match="QI-2026-000001"):
            await personal_data.erase(session, found, flow_runtime.dialogue.clock())


async def test_erasure_keeps_the_archive_masked_and_removes_the_rest(flow_runtime: Runtime, clock: Clock) -> None:
    await served_and_archived(flow_runtime, clock)
    async with transaction(flow_runtime.sessions) as session:
        found = await personal_data.find(session, personal_data.Subject(case_number="qi-2026-000001"))
        dry = await personal_data.erase(session, found, clock(), dry_run=True)
    assert await scalar(flow_runtime, select(func.count(ChannelIdentity.id))) == 1  # a dry run changes nothing
    async with transaction(flow_runtime.sessions) as session:
        found = await personal_data.find(session, personal_data.Subject(case_number="QI-2026-000001"))
        report = await personal_data.erase(session, found, clock())
    assert report.as_dict() == dry.as_dict()
    assert report.cases_kept_masked == ["QI-2026-000001"] and report.cases_deleted == ["QI-2026-000002"]
    # Gone: the chat identity, its messages, the cancelled case.
    assert await scalar(flow_runtime, select(func.count(ChannelIdentity.id))) == 0
    assert await scalar(flow_runtime, select(func.count(MessageLog.id))) == 0
    assert await scalar(flow_runtime, select(func.count(ServiceCase.id))) == 1
    async with flow_runtime.sessions() as session:
        enterprise = (await session.execute(select(Enterprise))).scalar_one()
        archive = (await session.execute(select(CaseArchive))).scalar_one()
        events = (await session.execute(select(CaseEvent))).scalars().all()
        consent = (await session.execute(select(PrivacyConsent))).scalar_one()
    # Kept, masked: the profile, the archive (with a digest of what it now holds), the timeline.
    assert (enterprise.mobile, enterprise.contact_name) == ("138****5678", "林**")
    assert enterprise.name == "厦门示例超市有限公司"
    assert enterprise.credit_code is not None and CODE not in enterprise.credit_code
    dumped = json.dumps(archive.content, ensure_ascii=False)
    assert MOBILE not in dumped and CODE not in dumped and "林店长" not in dumped
    assert archive.content["enterprise"]["contact_name"] == "林**" and archive.content["transcript"]
    canonical = json.dumps(archive.content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert archive.digest == hashlib.sha256(canonical.encode()).hexdigest()
    assert not any(MOBILE in e.text or "林店长" in e.text for e in events)
    erased = [e for e in events if e.kind == "personal_data_erased"]
    assert len(erased) == 1 and len(erased[0].data["previous_sha256"]) == 64
    assert consent.withdrawn_at is not None and consent.identity_id is None  # the proof stays


async def test_past_retention_nothing_is_kept(flow_runtime: Runtime, clock: Clock) -> None:
    await served_and_archived(flow_runtime, clock)
    later = clock() + timedelta(days=4 * 366)
    async with transaction(flow_runtime.sessions) as session:
        found = await personal_data.find(session, personal_data.Subject(mobile=MOBILE))
        report = await personal_data.erase(session, found, later)
    assert report.cases_kept_masked == [] and report.profiles_deleted == 1
    for model in (Enterprise, ServiceCase, CaseArchive, ChannelIdentity):
        assert await scalar(flow_runtime, select(func.count()).select_from(model)) == 0


async def test_the_commands_answer_and_audit_the_request(flow_runtime: Runtime, clock: Clock, tmp_path: Path) -> None:
    await served_and_archived(flow_runtime, clock)
    data_dir = flow_runtime.settings.data_dir
    out = tmp_path / "copy.json"
    result = invoke(["enterprise", "export", "--mobile", MOBILE, "--out", str(out), "--as", "zhang",
                  "--reason", "2026-12-07 来函"], data_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["enterprises"][0]["profile"]["mobile"] == MOBILE
    assert out.stat().st_mode & 0o077 == 0
    result = invoke(["enterprise", "erase", "--mobile", MOBILE], data_dir)
    assert result.returncode == 1 and "--yes" in result.stderr  # shown, not done
    result = invoke(["enterprise", "erase", "--mobile", MOBILE, "--yes", "--as", "zhang", "--reason", "本人申请删除"],
                 data_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cases_kept_masked"] == ["QI-2026-000001"]
    async with flow_runtime.sessions() as session:
        audit = (await session.execute(select(PrivacyRequest).order_by(PrivacyRequest.id))).scalars().all()
    assert [(a.kind, a.actor) for a in audit] == [("export", "zhang"), ("erase", "zhang")]
    assert MOBILE not in " ".join(a.subject for a in audit) and audit[1].reason == "本人申请删除"
    listing = invoke(["enterprise", "requests"], data_dir)
    assert listing.returncode == 0 and "erase" in listing.stdout and MOBILE not in listing.stdout
    assert invoke(["enterprise", "export", "--mobile", "13900000000"], data_dir).returncode == 1


async def test_erasure_drops_the_bytes_of_what_the_person_sent(flow_runtime: Runtime, clock: Clock) -> None:
    """Images may show the person (an ID card, a licence): a kept case keeps only the record
    that something was sent; a deleted case takes its materials with it."""
    from bot.services import materials
    from bot.storage.models import CaseMaterial

    await served_and_archived(flow_runtime, clock)
    async with transaction(flow_runtime.sessions) as session:
        for number in ("QI-2026-000001", "QI-2026-000002"):
            case = await cases.require_case(session, number)
            material = await materials.record(session, case, kind="image", ref="webchat-upload:x", channel="webchat",
                                              now=clock())
            assert material is not None
            await materials.store(session, material.id, b"\xff\xd8\xff" + b"1" * 100, filename="身份证.jpg",
                                  now=clock())
    async with transaction(flow_runtime.sessions) as session:
        found = await personal_data.find(session, personal_data.Subject(case_number="QI-2026-000001"))
        await personal_data.erase(session, found, clock())
    async with flow_runtime.sessions() as session:
        kept = (await session.execute(select(CaseMaterial))).scalars().all()
        assert [(m.status, m.filename) for m in kept] == [("erased", None)]  # the cancelled case's is gone
        assert await materials.with_content(session, kept[0].case_id, kept[0].id) is None
