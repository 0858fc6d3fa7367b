"""Complaints about the service (服务投诉与反馈处理): numbered, acknowledged, routed to the
management institution, tracked to a reply that reaches the enterprise in its own channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import outbox
from bot.services.case_states import COMPLAINT_STATUS_ZH
from bot.services.cases import CaseError
from bot.services.numbering import COMPLAINT_SERIES, next_number
from bot.storage.models import ChannelIdentity, Complaint, Enterprise, ServiceCase
from bot.texts import notifications

MANAGEMENT = "management"  # the console inbox of the management institution
STATUS_ZH = COMPLAINT_STATUS_ZH


def status_name(status: str) -> str:
    return STATUS_ZH.get(status, status)


async def file_complaint(
    session: AsyncSession,
    *,
    identity: ChannelIdentity,
    enterprise: Enterprise | None,
    text: str,
    case: ServiceCase | None,
    now: datetime,
) -> Complaint:
    number = await next_number(session, COMPLAINT_SERIES, now.year)
    complaint = Complaint(
        number=number, enterprise_id=enterprise.id if enterprise else None, identity_id=identity.id,
        case_id=case.id if case else None, text=text[:4000], status="open", created_at=now,
    )
    session.add(complaint)
    message = notifications().render(
        "complaint_filed", number=number, case_number=case.number if case else None, text=text[:500]
    )
    await outbox.enqueue(session, channel="console", recipient=MANAGEMENT, kind="complaint_filed",
                         payload={"text": message, "complaint": number}, now=now)
    await session.flush()
    return complaint


def _own(enterprise_id: int | None, identity_id: int) -> ColumnElement[bool]:
    """A complaint of this enterprise (from any of its chats), or of this chat."""
    mine = Complaint.identity_id == identity_id
    return or_(mine, Complaint.enterprise_id == enterprise_id) if enterprise_id is not None else mine


async def complaints_of(
    session: AsyncSession, enterprise_id: int | None, identity_id: int, limit: int = 10
) -> Sequence[Complaint]:
    """The complaints an enterprise filed, newest first."""
    return (
        await session.execute(
            select(Complaint).where(_own(enterprise_id, identity_id))
            .order_by(Complaint.created_at.desc(), Complaint.id.desc()).limit(limit)
        )
    ).scalars().all()


async def complaint_of(
    session: AsyncSession, number: str, enterprise_id: int | None, identity_id: int
) -> Complaint | None:
    """One complaint, only for whoever filed it: anyone else gets None, as for a number that
    does not exist."""
    return (
        await session.execute(select(Complaint).where(Complaint.number == number.upper(), _own(enterprise_id,
                                                                                               identity_id)))
    ).scalar_one_or_none()


async def list_complaints(session: AsyncSession, status: str | None = None) -> Sequence[Complaint]:
    stmt = select(Complaint).order_by(Complaint.created_at, Complaint.id)
    if status:
        stmt = stmt.where(Complaint.status == status)
    return (await session.execute(stmt)).scalars().all()


async def reply_complaint(session: AsyncSession, number: str, text: str, actor: str, now: datetime) -> Complaint:
    complaint = (
        await session.execute(select(Complaint).where(Complaint.number == number.upper()))
    ).scalar_one_or_none()
    if complaint is None:
        raise CaseError(f"没有编号为 {number} 的投诉")
    if not text.strip():
        raise CaseError("回复内容不能为空")
    complaint.reply, complaint.status, complaint.replied_at = text, "replied", now
    if complaint.identity_id is not None:
        identity = await session.get(ChannelIdentity, complaint.identity_id)
        if identity is not None:
            message = notifications().render("complaint_reply", number=complaint.number, text=text)
            await outbox.message_enterprise(session, identity, message, kind="complaint_reply", now=now,
                                            author=actor, case_id=complaint.case_id)
    return complaint
