"""Live handoff (转人工): connect the enterprise to a person, relay both ways, and keep the bot
silent while the person is on. The session lives in the database and in the enterprise's
conversation state (flow ``live``) so every worker sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import cases, matching
from bot.services.calendar import WorkingCalendar
from bot.services.conversations import DialogueState, save
from bot.storage.models import ChannelIdentity, Commissioner, Enterprise, LiveSession, ServiceCase
from bot.texts import notifications

LIVE_FLOW = "live"


@dataclass(frozen=True, slots=True)
class LiveStart:
    session_id: int
    case: ServiceCase
    commissioner: Commissioner | None
    on_duty_now: bool  # someone on duty and inside working hours
    expect_by: datetime  # when the enterprise can expect a person


async def start(
    session: AsyncSession,
    *,
    identity: ChannelIdentity,
    enterprise: Enterprise,
    domain: str | None,
    description: str,
    now: datetime,
    calendar: WorkingCalendar,
) -> LiveStart:
    """Route to the owner of the enterprise's open case, else to the best on-duty commissioner;
    open a consultation case if there is none, so the conversation has a number and a file."""
    open_cases = await cases.open_cases_of_enterprise(session, enterprise.id)
    case = open_cases[0] if open_cases else None
    if case is None:
        case = await cases.open_case(
            session, enterprise=enterprise, identity=identity, domain=domain or cases.GENERAL_DOMAIN,
            description=description or "请求人工服务", mode="online", district=enterprise.district, now=now,
        )
        case = await cases.require_case(session, case.number)
    commissioner = case.owner or case.assignee
    if commissioner is None or not commissioner.on_duty:
        commissioner = await matching.choose_commissioner(session, case.domain, case.district, on_duty_only=True) \
            or commissioner
    live = LiveSession(identity_id=identity.id, case_id=case.id, commissioner_id=commissioner.id if commissioner
                       else None, status="active", last_activity_at=now, created_at=now)
    session.add(live)
    await session.flush()
    cases.add_event(case, "live_started", "enterprise", now, commissioner.name if commissioner else "无人值守")
    if commissioner is not None:
        text = notifications().render("live_requested", number=case.number,
                                      enterprise_masked=cases.masked_enterprise(enterprise))
        await cases.notify_commissioner(session, commissioner, "live_requested", text, now, case_number=case.number)
    on_duty_now = commissioner is not None and commissioner.on_duty and calendar.is_working_time(now)
    return LiveStart(live.id, case, commissioner, on_duty_now, calendar.next_working_time(now))


async def active_session(session: AsyncSession, identity_id: int) -> LiveSession | None:
    return (
        await session.execute(
            select(LiveSession).where(LiveSession.identity_id == identity_id, LiveSession.status == "active")
            .order_by(LiveSession.id.desc())
        )
    ).scalars().first()


async def relay_from_enterprise(session: AsyncSession, live: LiveSession, text: str, now: datetime) -> None:
    number = await session.scalar(select(ServiceCase.number).where(ServiceCase.id == live.case_id))
    case = await cases.require_case(session, number or "")
    live.last_activity_at = now
    cases.add_event(case, "live_message", "enterprise", now, text[:4000])
    commissioner = await session.get(Commissioner, live.commissioner_id) if live.commissioner_id else None
    if commissioner is None:
        commissioner = await matching.choose_commissioner(session, case.domain, case.district)
    if commissioner is not None:
        message = notifications().render("live_message", number=case.number, text=text[:1000])
        await cases.notify_commissioner(session, commissioner, "live_message", message, now, case_number=case.number)


async def end(
    session: AsyncSession, live: LiveSession, by: str, now: datetime, *, from_outside: bool
) -> None:
    """End the session. Ended from outside the enterprise's own turn (by the commissioner),
    the enterprise is told and its live flow is cleared here; ended within its turn, the
    handler clears the flow and says so itself."""
    live.status, live.ended_at, live.ended_by = "ended", now, by
    case = await session.get(ServiceCase, live.case_id)
    if case is not None:
        full = await cases.require_case(session, case.number)
        cases.add_event(full, "live_ended", by, now)
        if from_outside:
            await cases.tell_enterprise(session, full, "live_ended_by_commissioner", now, by)
    if from_outside:
        await save(session, live.identity_id, DialogueState())


async def active_for_case(session: AsyncSession, case: ServiceCase) -> LiveSession | None:
    return (
        await session.execute(
            select(LiveSession).where(LiveSession.case_id == case.id, LiveSession.status == "active")
        )
    ).scalars().first()


async def touch_for_case(session: AsyncSession, case: ServiceCase, now: datetime) -> None:
    """A commissioner's reply keeps the live session from idling out."""
    live = await active_for_case(session, case)
    if live is not None:
        live.last_activity_at = now
