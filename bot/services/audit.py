"""The staff audit log: every console action (who, what, when, which case), append-only.

Only :func:`record` writes it and nothing here or elsewhere updates or deletes a row; the
database refuses both with triggers (migration 0007). Details never carry personal data in
clear: a reveal records which field was shown, not its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import redact
from bot.storage.staff import StaffAudit


async def record(
    session: AsyncSession, *, account_id: int | None, login: str, role: str, action: str,
    case_id: int | None, case_number: str | None, detail: str, now: datetime,
) -> None:
    session.add(StaffAudit(created_at=now, account_id=account_id, login=login, role=role, action=action[:40],
                           case_id=case_id, case_number=case_number, detail=redact(detail)[:2000]))


async def recent(
    session: AsyncSession, *, case_id: int | None = None, login: str | None = None, limit: int = 200,
) -> Sequence[StaffAudit]:
    """Newest first, optionally of one case or one person."""
    query = select(StaffAudit).order_by(StaffAudit.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(StaffAudit.case_id == case_id)
    if login:
        query = query.where(StaffAudit.login == login)
    return (await session.execute(query)).scalars().all()
