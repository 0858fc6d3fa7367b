"""The commissioner's inbox, read from the database each time (the source of truth for every
worker): mine, waiting for acceptance in my skills, overdue and about to be overdue for
acceptance (working hours on the working calendar, ``QIBOT_ESCALATION_HOURS``, the deadline
the escalation job enforces), live handoffs, open complaints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from bot.console.scope import Scope
from bot.services import desk, stats
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
    # How many there are in all (the lists show the first LIMIT, oldest first).
    totals: dict[str, int] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return self.totals.get(name, len(getattr(self, name)))

    @property
    def attention(self) -> int:
        """What the tab title counts: things someone must act on."""
        return self.total("waiting") + self.total("overdue") + len(self.live) + len(self.complaints) \
            + sum(1 for r in self.mine if r.case.status == "new")

    def fingerprint(self) -> str:
        """Changes whenever anything shown changes (a new case, a status, an update)."""
        parts = []
        for name in ("mine", "waiting", "overdue", "due_soon", "live"):
            rows: list[Row] = getattr(self, name)
            parts.append(name + ":" + ",".join(f"{r.case.id}/{r.case.status}/{r.case.updated_at}" for r in rows))
        parts.append("complaints:" + ",".join(f"{c.id}/{c.status}" for c, _ in self.complaints))
        parts.append("totals:" + ",".join(f"{k}={v}" for k, v in sorted(self.totals.items())))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


async def load(session: AsyncSession, scope: Scope, policy: ServicePolicy, now: datetime) -> Inbox:
    """Every list in a few indexed statements: the acceptance deadline is the stamped
    ``accept_due_at`` (``stats.stamp_deadlines``; cases are born with it), so overdue, due soon and
    waiting are SQL conditions, counted and cut to LIMIT by the database instead of loading every
    new case and working out each deadline in Python (which cost 0.3-0.5 s at 100,000 cases)."""
    await stats.stamp_acceptance(session, policy)  # a no-op (one indexed look) once all are stamped
    inbox = Inbox()
    me = scope.commissioner
    if me is not None:
        inbox.mine = [Row(c, c.accept_due_at if c.status == "new" else None)
                      for c in await desk.open_cases(session, me, limit=LIMIT)]
    soon = policy.calendar.add_working_hours(now, DUE_SOON_HOURS)
    new = and_(ServiceCase.status == "new", scope.condition())
    conditions: dict[str, ColumnElement[bool]] = {
        "overdue": and_(new, ServiceCase.accept_due_at <= now),
        "due_soon": and_(new, ServiceCase.accept_due_at > now, ServiceCase.accept_due_at <= soon),
        "waiting": new,
    }
    if me is not None:  # not mine (the owner, else the assignee: as desk.open_cases): the mine list shows those
        holder = func.coalesce(ServiceCase.owner_id, ServiceCase.assignee_id, 0)  # no NULL: NOT stays two-valued
        conditions["waiting"] = and_(new, holder != me.id)
    if scope.principal.role == "commissioner":  # waiting in my skills
        conditions["waiting"] = and_(conditions["waiting"], ServiceCase.domain.in_(scope.domains))
    totals = (await session.execute(select(*[func.coalesce(func.sum(case((c, 1), else_=0)), 0).label(name)
                                             for name, c in conditions.items()]).where(new))).one()
    inbox.totals = {name: int(totals._mapping[name]) for name in conditions}
    for name, condition in conditions.items():
        if not inbox.totals[name]:
            continue
        rows = (await session.execute(
            select(ServiceCase).where(condition)
            .options(joinedload(ServiceCase.enterprise, innerjoin=True))  # one statement per list
            .order_by(ServiceCase.created_at, ServiceCase.id).limit(LIMIT))).scalars().all()
        setattr(inbox, name, [Row(c, c.accept_due_at) for c in rows])
    live_cases = (await session.execute(
        select(ServiceCase).join(LiveSession, LiveSession.case_id == ServiceCase.id)
        .where(LiveSession.status == "active", scope.condition())
        .options(joinedload(ServiceCase.enterprise, innerjoin=True))
        .order_by(LiveSession.last_activity_at.desc()).limit(LIMIT)
    )).scalars().unique().all()
    inbox.live = [Row(c) for c in live_cases]
    complaints = (select(Complaint, ServiceCase.number).outerjoin(ServiceCase, ServiceCase.id == Complaint.case_id)
                  .where(Complaint.status == "open").order_by(Complaint.id).limit(LIMIT))
    if not scope.principal.sees_all:  # complaints about no case go to the management institution
        complaints = complaints.where(Complaint.case_id.is_not(None), scope.condition())
    inbox.complaints = [(c, n) for c, n in (await session.execute(complaints)).all()]
    return inbox
