"""Escalation of cases nobody accepted (服务质量监督): after a configurable number of working
hours a new case goes to the site supervisor, once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.services import matching
from bot.services.calendar import WorkingCalendar
from bot.services.cases import add_event, domain_name, notify_commissioner
from bot.storage.models import ServiceCase
from bot.texts import notifications


async def escalate_unaccepted(session: AsyncSession, calendar: WorkingCalendar, hours: float, now: datetime) -> int:
    candidates = (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.status == "new", ServiceCase.escalated_at.is_(None))
            .options(selectinload(ServiceCase.events), selectinload(ServiceCase.assignee))
        )
    ).scalars().all()
    escalated = 0
    for case in candidates:
        if calendar.working_hours_between(case.created_at, now) < hours:
            continue
        supervisor = await matching.supervisor_for(session, case.assignee)
        case.escalated_at = now
        add_event(case, "escalated", "system", now, f"超过 {hours:g} 个工作小时未受理",
                  supervisor=supervisor.handle if supervisor else None)
        if supervisor is not None:
            text = notifications().render(
                "case_escalated", number=case.number, domain_name=domain_name(case.domain), hours=f"{hours:g}",
                assignee=case.assignee.name if case.assignee else "无",
            )
            await notify_commissioner(session, supervisor, "case_escalated", text, now, case_number=case.number,
                                      dedup_key=f"escalated:{case.number}")
        escalated += 1
    return escalated
