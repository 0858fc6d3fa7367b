"""Case archives (档案管理, 6.10): one file per case, frozen when the case closes, kept at least
the retention period, retrievable by number. Exports mask personal identifiers."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import redact_data
from bot.services.cases import CaseError, domain_name
from bot.storage.models import CaseArchive, Enterprise, MessageLog, Rating, ServiceCase

DEFAULT_RETENTION_YEARS = 3


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def snapshot(session: AsyncSession, case: ServiceCase) -> dict[str, Any]:
    """Everything the archive keeps: profile, case, timeline, transcript, attachments, ratings."""
    enterprise = await session.get(Enterprise, case.enterprise_id)
    transcript: list[dict[str, Any]] = []
    if case.identity_id is not None:
        rows = await session.execute(
            select(MessageLog)
            .where(MessageLog.identity_id == case.identity_id, MessageLog.created_at >= case.created_at)
            .order_by(MessageLog.id)
        )
        end = case.closed_at
        transcript = [
            {"at": _iso(m.created_at), "direction": m.direction, "author": m.author, "text": m.text}
            for m in rows.scalars()
            if end is None or m.created_at <= end
        ]
    ratings = (await session.execute(select(Rating).where(Rating.case_id == case.id).order_by(Rating.round))).scalars()
    return {
        "number": case.number,
        "domain": case.domain,
        "domain_name": domain_name(case.domain),
        "status": case.status,
        "description": case.description,
        "mode": case.mode,
        "district": case.district,
        "owner": case.owner.name if case.owner else None,
        "created_at": _iso(case.created_at),
        "accepted_at": _iso(case.accepted_at),
        "resolved_at": _iso(case.resolved_at),
        "closed_at": _iso(case.closed_at),
        "enterprise": {
            "name": enterprise.name if enterprise else None,
            "credit_code": enterprise.credit_code if enterprise else None,
            "contact_name": enterprise.contact_name if enterprise else None,
            "mobile": enterprise.mobile if enterprise else None,
            "district": enterprise.district if enterprise else None,
            "industry": enterprise.industry if enterprise else None,
        },
        "suggestions": case.suggestions or {},
        "timeline": [
            {"at": _iso(e.created_at), "kind": e.kind, "actor": e.actor, "text": e.text, "data": e.data}
            for e in case.events
        ],
        "attachments": [e.data for e in case.events if e.kind == "attachment"],
        "transcript": transcript,
        "ratings": [{"round": r.round, "score": r.score, "comment": r.comment, "at": _iso(r.created_at)}
                    for r in ratings],
    }


def _canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


async def archive_case(
    session: AsyncSession, case: ServiceCase, now: datetime, retention_years: int = DEFAULT_RETENTION_YEARS
) -> CaseArchive:
    """Freeze the case into its archive file (re-archiving after a reopen replaces it)."""
    content = await snapshot(session, case)
    digest = hashlib.sha256(_canonical(content).encode()).hexdigest()
    existing = (await session.execute(select(CaseArchive).where(CaseArchive.case_id == case.id))).scalar_one_or_none()
    retain_until = now + timedelta(days=365 * retention_years + retention_years // 4 + 1)
    if existing is not None:
        existing.content, existing.digest, existing.archived_at = content, digest, now
        existing.retain_until = max(existing.retain_until, retain_until)
        return existing
    archive = CaseArchive(case_id=case.id, number=case.number, archived_at=now, retain_until=retain_until,
                          content=content, digest=digest)
    session.add(archive)
    return archive


def intact(archive: CaseArchive) -> bool:
    """Whether the archive's content is still what was frozen (its SHA-256 digest matches):
    checked after a restore, and by ``qibot db check-archives``."""
    return hashlib.sha256(_canonical(archive.content).encode()).hexdigest() == archive.digest


async def get_archive(session: AsyncSession, number: str) -> CaseArchive | None:
    return (await session.execute(select(CaseArchive).where(CaseArchive.number == number.upper()))).scalar_one_or_none()


async def delete_archive(session: AsyncSession, number: str, now: datetime) -> None:
    archive = await get_archive(session, number)
    if archive is None:
        raise CaseError(f"没有编号为 {number} 的档案")
    if now < archive.retain_until:
        raise CaseError(
            f"{archive.number} 的档案须保存至 {archive.retain_until:%Y-%m-%d}（保存期限不少于3年），拒绝删除"
        )
    await session.delete(archive)


def masked_export(archive: CaseArchive) -> dict[str, Any]:
    """The archive as exported: identifiers masked everywhere, with the digest of the original."""
    masked = redact_data(archive.content)  # string by string: JSON escapes would hide a spelling
    return {"archive": masked, "sha256_of_original": archive.digest, "archived_at": _iso(archive.archived_at),
            "retain_until": _iso(archive.retain_until)}
