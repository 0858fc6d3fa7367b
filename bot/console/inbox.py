"""The commissioner's inbox, read from the database each time (the source of truth for every
worker): mine, waiting for acceptance in my skills, overdue and about to be overdue for
acceptance (working hours on the working calendar, ``QIBOT_ESCALATION_HOURS``, the deadline
the escalation job enforces), live handoffs, open complaints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.console.scope import Scope
from bot.services import desk
from bot.services.policy import ServicePolicy
from bot.storage.models import Complaint, LiveSession, ServiceCase

LIMIT = 50
DUE_SOON_HOURS = 1.0  # "about to be overdue": within this many working hours of the deadline


@dataclass(frozen=True, slots=True)
class Row:
    case: ServiceCase
    deadline: datetime | None = None  # acceptance deadline of a new case


@dataclass
class Inbox:
    mine: list[Row] = field(default_factory=list)
    waiting: list[Row] = field(default_factory=list)
    overdue: list[Row] = field(default_factory=list)
    due_soon: list[Row] = field(default_factory=list)
    live: list[Row] = field(default_factory=list)
    complaints: list[tuple[Complaint, str | None]] = field(default_factory=list)  # with the case number

    @property
    def attention(self) -> int:
        """What the tab title counts: things someone must act on."""
        return len(self.waiting) + len(self.overdue) + len(self.live) + len(self.complaints) \
            + sum(1 for r in self.mine if r.case.status == "new")

    def fingerprint(self) -> str:
        """Changes whenever anything shown changes (a new case, a status, an update)."""
        parts = []
        for name in ("mine", "waiting", "overdue", "due_soon", "live"):
            rows: list[Row] = getattr(self, name)
            parts.append(name + ":" + ",".join(f"{r.case.id}/{r.case.status}/{r.case.updated_at}" for r in rows))
        parts.append("complaints:" + ",".join(f"{c.id}/{c.status}" for c, _ in self.complaints))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


async def load(session: AsyncSession, scope: Scope, policy: ServicePolicy, now: datetime) -> Inbox:
    inbox = Inbox()
    calendar = policy.calendar
    me = scope.commissioner
    if me is not None:
        inbox.mine = [Row(c, _deadline(c, policy)) for c in await desk.open_cases(session, me, limit=LIMIT)]
    mine_ids = {r.case.id for r in inbox.mine}
    new_cases = (await session.execute(
        select(ServiceCase).where(ServiceCase.status == "new", scope.condition())
        .options(selectinload(ServiceCase.enterprise), selectinload(ServiceCase.assignee))
        .order_by(ServiceCase.created_at, ServiceCase.id).limit(500)
    )).scalars().all()
    soon = calendar.add_working_hours(now, DUE_SOON_HOURS)
    for case in new_cases:
        deadline = _deadline(case, policy)
        row = Row(case, deadline)
        if deadline is not None and deadline <= now:
            inbox.overdue.append(row)
        elif deadline is not None and deadline <= soon:
            inbox.due_soon.append(row)
        in_skills = scope.principal.role != "commissioner" or case.domain in scope.domains
        if case.id not in mine_ids and in_skills and len(inbox.waiting) < LIMIT:
            inbox.waiting.append(row)
    live_cases = (await session.execute(
        select(ServiceCase).join(LiveSession, LiveSession.case_id == ServiceCase.id)
        .where(LiveSession.status == "active", scope.condition())
        .options(selectinload(ServiceCase.enterprise)).order_by(LiveSession.last_activity_at.desc()).limit(LIMIT)
    )).scalars().unique().all()
    inbox.live = [Row(c) for c in live_cases]
    complaints = (select(Complaint, ServiceCase.number).outerjoin(ServiceCase, ServiceCase.id == Complaint.case_id)
                  .where(Complaint.status == "open").order_by(Complaint.id).limit(LIMIT))
    if not scope.principal.sees_all:  # complaints about no case go to the management institution
        complaints = complaints.where(Complaint.case_id.is_not(None), scope.condition())
    inbox.complaints = [(c, n) for c, n in (await session.execute(complaints)).all()]
    return inbox


def _deadline(case: ServiceCase, policy: ServicePolicy) -> datetime | None:
    if case.status != "new":
        return None
    return policy.calendar.add_working_hours(case.created_at, policy.escalation_hours)
