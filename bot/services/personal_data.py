"""A person's requests about their data (PIPL arts. 45 and 47): a copy of everything kept about
them, or its erasure, answered by staff with ``qibot enterprise export|erase`` and audited in
``privacy_request`` (who, when, why, what).

Erasure keeps what the archive rule requires, masked: a case whose archive file is still inside
its retention period (``QIBOT_ARCHIVE_RETENTION_YEARS``, at least 3 years, 6.10 of the standard)
stays, with mobiles, credit codes, ID numbers and the contact's name masked in the case, its
timeline, its rating comments and its archive (whose digest is recomputed; the old one is kept
on the timeline). Everything else goes: the chat identities with their messages, conversation
state and pending notifications, cases that are cancelled or past retention, and the profile
itself once nothing retained refers to it. Consent records stay, marked withdrawn, as the proof
that the processing was lawful while it lasted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import redact
from bot.services.case_states import OPEN_STATUSES
from bot.services.cases import CaseError
from bot.storage.models import (
    CaseArchive,
    CaseEvent,
    CaseMaterial,
    ChannelIdentity,
    Complaint,
    ConversationState,
    Enterprise,
    LiveSession,
    MessageLog,
    Outbox,
    PrivacyConsent,
    PrivacyRequest,
    Rating,
    ServiceCase,
)
from intents.extract import find_credit_codes, find_mobiles


@dataclass(frozen=True, slots=True)
class Subject:
    """How staff name the person: by mobile, credit code, enterprise id or one of their cases."""

    mobile: str | None = None
    credit_code: str | None = None
    enterprise_id: int | None = None
    case_number: str | None = None

    def describe(self) -> str:
        """For the audit row: masked, since the audit outlives an erasure."""
        parts = []
        if self.mobile:
            parts.append(f"mobile {redact(self.mobile)}")
        if self.credit_code:
            parts.append(f"credit code {redact(self.credit_code)}")
        if self.enterprise_id is not None:
            parts.append(f"enterprise {self.enterprise_id}")
        if self.case_number:
            parts.append(f"case {self.case_number}")
        return ", ".join(parts) or "-"


@dataclass
class Erasure:
    enterprises: list[int] = field(default_factory=list)
    identities: int = 0
    messages: int = 0
    cases_deleted: list[str] = field(default_factory=list)
    cases_kept_masked: list[str] = field(default_factory=list)
    complaints_masked: int = 0
    consents_withdrawn: int = 0
    profiles_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "enterprises": self.enterprises, "identities": self.identities, "messages": self.messages,
            "cases_deleted": self.cases_deleted, "cases_kept_masked": self.cases_kept_masked,
            "complaints_masked": self.complaints_masked, "consents_withdrawn": self.consents_withdrawn,
            "profiles_deleted": self.profiles_deleted,
        }


async def find(session: AsyncSession, subject: Subject) -> list[Enterprise]:
    """Every enterprise profile the subject names. A mobile can stand behind several (one per web
    session that gave it): a person's request covers all of them."""
    conditions = []
    if subject.mobile:
        mobiles = find_mobiles(subject.mobile)
        if not mobiles:
            raise CaseError(f"{redact(subject.mobile)} 不是有效的手机号码")
        conditions.append(Enterprise.mobile == mobiles[0])
    if subject.credit_code:
        codes = find_credit_codes(subject.credit_code)
        if not codes:
            raise CaseError("不是有效的统一社会信用代码")
        conditions.append(Enterprise.credit_code == codes[0].code)
    if subject.enterprise_id is not None:
        conditions.append(Enterprise.id == subject.enterprise_id)
    if subject.case_number:
        conditions.append(Enterprise.id.in_(
            select(ServiceCase.enterprise_id).where(ServiceCase.number == subject.case_number.upper())))
    if not conditions:
        raise CaseError("请用 --mobile、--credit-code、--id 或 --case 指明要处理的企业")
    rows = await session.execute(select(Enterprise).where(or_(*conditions)).order_by(Enterprise.id))
    return list(rows.scalars())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export(session: AsyncSession, enterprises: list[Enterprise], now: datetime) -> dict[str, Any]:
    """Everything kept about these enterprises, in clear: it is the person's own data."""
    result: dict[str, Any] = {"generated_at": now.isoformat(), "enterprises": []}
    for enterprise in enterprises:
        identities = list((await session.execute(
            select(ChannelIdentity).where(ChannelIdentity.enterprise_id == enterprise.id)
            .order_by(ChannelIdentity.id))).scalars())
        identity_ids = [i.id for i in identities]
        case_rows = list((await session.execute(
            select(ServiceCase).where(ServiceCase.enterprise_id == enterprise.id).order_by(ServiceCase.id))).scalars())
        cases_out = []
        for case in case_rows:
            events = (await session.execute(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id))).scalars()
            ratings = (await session.execute(
                select(Rating).where(Rating.case_id == case.id).order_by(Rating.round))).scalars()
            cases_out.append({
                "number": case.number, "domain": case.domain, "status": case.status, "description": case.description,
                "mode": case.mode, "district": case.district, "created_at": _iso(case.created_at),
                "closed_at": _iso(case.closed_at),
                "timeline": [{"at": _iso(e.created_at), "kind": e.kind, "actor": e.actor, "text": e.text}
                             for e in events],
                "ratings": [{"round": r.round, "score": r.score, "comment": r.comment} for r in ratings],
            })
        complaints = (await session.execute(
            select(Complaint).where(Complaint.enterprise_id == enterprise.id).order_by(Complaint.id))).scalars()
        consents = (await session.execute(
            select(PrivacyConsent).where(or_(PrivacyConsent.enterprise_id == enterprise.id,
                                             PrivacyConsent.identity_id.in_(identity_ids)))
            .order_by(PrivacyConsent.id))).scalars()
        messages = (await session.execute(
            select(MessageLog).where(MessageLog.identity_id.in_(identity_ids)).order_by(MessageLog.id))).scalars()
        result["enterprises"].append({
            "profile": {
                "id": enterprise.id, "name": enterprise.name, "credit_code": enterprise.credit_code,
                "contact_name": enterprise.contact_name, "mobile": enterprise.mobile,
                "district": enterprise.district, "industry": enterprise.industry,
                "created_at": _iso(enterprise.created_at),
            },
            "chat_identities": [{"channel": i.channel, "first_contact": _iso(i.created_at),
                                 "last_message": _iso(i.last_inbound_at)} for i in identities],
            "consents": [{"at": _iso(c.created_at), "notice_version": c.notice_version, "purpose": c.purpose,
                          "method": c.method, "withdrawn_at": _iso(c.withdrawn_at)} for c in consents],
            "cases": cases_out,
            "complaints": [{"number": c.number, "text": c.text, "status": c.status, "reply": c.reply,
                            "at": _iso(c.created_at)} for c in complaints],
            "messages": [{"at": _iso(m.created_at), "direction": m.direction, "author": m.author, "text": m.text}
                         for m in messages],
        })
    return result


def _mask_person(name: str | None) -> str | None:
    """``林店长`` → ``林**``: the archive still shows that someone was the contact."""
    if not name:
        return name
    name = name.strip()
    return name[0] + "*" * max(1, len(name) - 1)


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _masked(text: str | None, names: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    for name in names:
        if name and len(name) >= 2:
            text = text.replace(name, _mask_person(name) or "")
    return redact(text)


def _masked_data(value: Any, names: tuple[str, ...]) -> Any:
    return json.loads(_masked(_canonical(value), names) or "null")


async def erase(
    session: AsyncSession, enterprises: list[Enterprise], now: datetime, *, dry_run: bool = False
) -> Erasure:
    """Erase what the archive rule does not require and mask what it does (see the module doc).
    Refused while a case is still being handled: close or cancel it first."""
    report = Erasure()
    for enterprise in enterprises:
        open_cases = (await session.execute(select(ServiceCase.number).where(
            ServiceCase.enterprise_id == enterprise.id, ServiceCase.status.in_(OPEN_STATUSES)))).scalars().all()
        if open_cases:
            raise CaseError(f"企业 {enterprise.id} 仍有办理中的需求 {', '.join(open_cases)}："
                            "请先办结或取消，再删除个人信息")
    for enterprise in enterprises:
        report.enterprises.append(enterprise.id)
        names = tuple(n for n in (enterprise.contact_name,) if n)
        identity_ids = list((await session.execute(select(ChannelIdentity.id).where(
            ChannelIdentity.enterprise_id == enterprise.id))).scalars())
        report.identities += len(identity_ids)
        report.messages += len((await session.execute(select(MessageLog.id).where(
            MessageLog.identity_id.in_(identity_ids)))).all())
        kept = False
        for case in (await session.execute(select(ServiceCase).where(
                ServiceCase.enterprise_id == enterprise.id).order_by(ServiceCase.id))).scalars().all():
            archive = (await session.execute(select(CaseArchive).where(
                CaseArchive.case_id == case.id))).scalar_one_or_none()
            retained = case.status != "cancelled" and (archive is None or archive.retain_until > now)
            if not retained:
                report.cases_deleted.append(case.number)
                if not dry_run:
                    if archive is not None:
                        await session.delete(archive)
                    await session.delete(case)
                continue
            kept = True
            report.cases_kept_masked.append(case.number)
            if dry_run:
                continue
            case.description = _masked(case.description, names) or ""
            # The images and files sent may show the person (ID cards, licences): the bytes go,
            # the record that something was sent stays (the archive keeps only references).
            await session.execute(update(CaseMaterial).where(CaseMaterial.case_id == case.id).values(
                content=None, filename=None, status="erased", error="应本人要求已删除"))
            for event in (await session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id))).scalars():
                event.text = _masked(event.text, names) or ""
                event.data = _masked_data(event.data, names)
            for rating in (await session.execute(select(Rating).where(Rating.case_id == case.id))).scalars():
                rating.comment = _masked(rating.comment, names)
            if archive is not None:
                content = _masked_data(archive.content, names)
                content.setdefault("enterprise", {})["contact_name"] = _mask_person(
                    (archive.content.get("enterprise") or {}).get("contact_name"))
                previous = archive.digest
                archive.content = content
                archive.digest = hashlib.sha256(_canonical(content).encode()).hexdigest()
                session.add(CaseEvent(case_id=case.id, kind="personal_data_erased", actor="system", created_at=now,
                                      text="应本人要求删除个人信息（档案保留期内，已脱敏）",
                                      data={"previous_sha256": previous}))
            else:
                session.add(CaseEvent(case_id=case.id, kind="personal_data_erased", actor="system", created_at=now,
                                      text="应本人要求删除个人信息（已脱敏）", data={}))
        for complaint in (await session.execute(select(Complaint).where(
                Complaint.enterprise_id == enterprise.id))).scalars().all():
            report.complaints_masked += 1
            if not dry_run:
                complaint.text = _masked(complaint.text, names) or ""
                complaint.reply = _masked(complaint.reply, names)
        consents = (await session.execute(select(PrivacyConsent).where(
            or_(PrivacyConsent.enterprise_id == enterprise.id, PrivacyConsent.identity_id.in_(identity_ids)),
            PrivacyConsent.withdrawn_at.is_(None)))).scalars().all()
        report.consents_withdrawn += len(consents)
        if dry_run:
            continue
        for consent in consents:
            consent.withdrawn_at = now
        if identity_ids:
            for table in (MessageLog, Outbox, LiveSession, ConversationState):
                await session.execute(delete(table).where(table.identity_id.in_(identity_ids)))
            await session.execute(delete(ChannelIdentity).where(ChannelIdentity.id.in_(identity_ids)))
        if kept:
            enterprise.contact_name = _mask_person(enterprise.contact_name)
            enterprise.mobile = redact(enterprise.mobile) if enterprise.mobile else None
            enterprise.credit_code = redact(enterprise.credit_code) if enterprise.credit_code else None
        else:
            report.profiles_deleted += 1
            await session.delete(enterprise)
        await session.flush()
    return report


async def audit(
    session: AsyncSession, *, kind: str, subject: Subject, enterprises: list[Enterprise], actor: str, reason: str,
    summary: dict[str, Any], now: datetime,
) -> PrivacyRequest:
    row = PrivacyRequest(
        kind=kind, enterprise_id=enterprises[0].id if len(enterprises) == 1 and kind == "export" else None,
        subject=subject.describe()[:200], actor=actor[:80], reason=reason, summary=summary, created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def requests(session: AsyncSession, limit: int = 50) -> list[PrivacyRequest]:
    rows = await session.execute(select(PrivacyRequest).order_by(PrivacyRequest.id.desc()).limit(limit))
    return list(rows.scalars())
