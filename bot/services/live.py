"""Live handoff (转人工): connect the enterprise to a person, relay both ways, and keep the bot
silent while the person is on. The session lives in the database and in the enterprise's
conversation state (flow ``live``) so every worker sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import cases, matching
from bot.services.calendar import WorkingCalendar
from bot.services.conversations import DialogueState, save
from bot.services.policy import ServicePolicy
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
    opened_case: bool = False  # the handoff opened this (consultation) case


def staff_time(moment: datetime, calendar: WorkingCalendar) -> str:
    """A moment as staff read it: the date and time where the service works (Beijing time)."""
    return moment.astimezone(calendar.tz).strftime("%Y-%m-%d %H:%M") + "（北京时间）"


def _case_for_handoff(open_cases: Sequence[ServiceCase]) -> ServiceCase | None:
    """The open case a handoff belongs to: one a commissioner has accepted (its owner is the
    person to talk to, 首问负责制), else the most recently updated one."""
    owned = [c for c in open_cases if c.owner_id is not None]
    candidates = owned or list(open_cases)
    return candidates[0] if candidates else None


async def start(
    session: AsyncSession,
    *,
    identity: ChannelIdentity,
    enterprise: Enterprise,
    domain: str | None,
    description: str,
    now: datetime,
    calendar: WorkingCalendar,
    policy: ServicePolicy | None = None,
) -> LiveStart:
    """A handoff belongs to the enterprise's open case and goes to the person in charge of it
    first (its owner, else its assignee: 首问负责制); only when that person is off duty does an
    on-duty colleague take the conversation, and the person in charge is told. Without an open
    case a consultation case is opened with what the enterprise said it is about, so the
    conversation has a number and a file."""
    case = _case_for_handoff(await cases.open_cases_of_enterprise(session, enterprise.id))
    opened = case is None
    if case is None:
        case = await cases.open_case(
            session, enterprise=enterprise, identity=identity, domain=domain or cases.GENERAL_DOMAIN,
            description=description or "请求人工服务", mode="online", district=enterprise.district, now=now,
            policy=policy,
        )
        case = await cases.require_case(session, case.number)
    in_charge = case.owner or case.assignee
    commissioner = in_charge
    if commissioner is None or not commissioner.on_duty:
        commissioner = await matching.choose_commissioner(session, case.domain, case.district, on_duty_only=True) \
            or commissioner
    live = LiveSession(identity_id=identity.id, case_id=case.id, commissioner_id=commissioner.id if commissioner
                       else None, status="active", last_activity_at=now, created_at=now)
    session.add(live)
    await session.flush()
    on_duty_now = commissioner is not None and commissioner.on_duty and calendar.is_working_time(now)
    expect_by = now if on_duty_now else calendar.next_working_time(now)
    # The moment the enterprise was told ("预计在 11月26日 08:30 后回复"), as staff read it.
    promised = "" if on_duty_now else staff_time(expect_by, calendar)
    cases.add_event(case, "live_started", "enterprise", now,
                    (commissioner.name if commissioner else "无人值守") + (f"；已告知企业预计 {promised}后回复"
                                                                        if promised else ""),
                    opened_case=opened, expect_by=expect_by.isoformat() if promised else None)
    if commissioner is not None:
        text = notifications().render("live_requested", number=case.number, description=case.description[:200],
                                      enterprise_masked=cases.masked_enterprise(enterprise), expect_by=promised)
        await cases.notify_commissioner(session, commissioner, "live_requested", text, now, case_number=case.number)
    if in_charge is not None and commissioner is not None and in_charge.id != commissioner.id:
        text = notifications().render("live_covered", number=case.number, cover=commissioner.name)
        await cases.notify_commissioner(session, in_charge, "live_covered", text, now, case_number=case.number)
    return LiveStart(live.id, case, commissioner, on_duty_now, expect_by, opened)


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
) -> str:
    """End the session. Ended from outside the enterprise's own turn (by the commissioner),
    the enterprise is told and its live flow is cleared here; ended within its turn, the
    handler clears the flow and says so itself.

    The case does not stay waiting for someone to accept it: a commissioner who ends the
    session has served it and takes it (if nobody had yet); a consultation the handoff opened
    and the enterprise leaves before saying anything or getting an answer is withdrawn. What
    the enterprise left unanswered keeps the case waiting for a reply (and escalation, if
    nobody takes it). Returns what became of the case: "accepted", "withdrawn", "waiting"
    (unanswered, still new) or "" (nothing changed)."""
    live.status, live.ended_at, live.ended_by = "ended", now, by
    outcome = ""
    case = await session.get(ServiceCase, live.case_id)
    if case is not None:
        full = await cases.require_case(session, case.number)
        cases.add_event(full, "live_ended", by, now)
        if full.status == "new":
            outcome = await _after_live(session, full, live, by, now)
        if from_outside:
            await cases.tell_enterprise(session, full, "live_ended_by_commissioner", now, by)
    if from_outside:
        await save(session, live.identity_id, DialogueState(), now)
    return outcome


async def _after_live(session: AsyncSession, case: ServiceCase, live: LiveSession, by: str, now: datetime) -> str:
    if by.startswith("commissioner:"):
        person = await matching.find_commissioner(session, by.split(":", 1)[1])
        if person is not None and person.active:
            await cases.accept(session, case, person, now, tell=False)
            return "accepted"
    started = [e for e in case.events if e.kind == "live_started"]
    opened = bool(started and (started[0].data or {}).get("opened_case"))
    said = any(e.kind == "live_message" for e in case.events if e.created_at >= live.created_at)
    if opened and by == "enterprise" and not said:
        case.status, case.closed_at = "cancelled", now
        cases.add_event(case, "cancelled", "enterprise", now, "企业结束了人工请求，未留言")
        holder = case.owner or case.assignee
        if holder is not None:
            text = notifications().render("live_withdrawn", number=case.number)
            await cases.notify_commissioner(session, holder, "case_cancelled", text, now, case_number=case.number)
        return "withdrawn"
    return "waiting" if opened or said else ""


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
