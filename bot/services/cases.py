"""Cases (一项一档) from intake to archive, as domain operations.

States and transitions (every transition is a line on the case timeline):

    new ──accept──▶ accepted ──resolve──▶ resolved ──rate / auto-close──▶ closed (archived)
     │                 ▲  │                  │
     │                 │  └──transfer──┐     └──reopen──▶ accepted (rated again on next resolve)
     │                 └───────────────┘
     └──cancel (by the enterprise, also from accepted)──▶ cancelled

First-inquiry responsibility (首问负责制): the first commissioner who accepts owns the case;
only an explicit transfer with a reason changes the owner. Operations raise
:class:`CaseError` with a message a commissioner can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from bot.privacy import mask_name
from bot.services import matching, outbox
from bot.services.case_states import MODE_ZH, OPEN_STATUSES, STATUS_ZH
from bot.services.numbering import CASE_SERIES, next_number
from bot.services.policy import ServicePolicy
from bot.storage.models import CaseEvent, ChannelIdentity, Commissioner, Enterprise, ServiceCase
from bot.texts import notifications
from intents.labels import DOMAIN_NAMES_ZH

GENERAL_DOMAIN = "general"  # consultations opened by a handoff before any demand was classified


class CaseError(Exception):
    """An operation that is not allowed now; the message says why (in Chinese, for staff).

    The message carries no command syntax: staff work from several front ends (the CLI,
    Telegram, WeCom), and each renders ``next_step`` (the staff action that would help, and the
    case it applies to) in its own form: ``qibot case accept QI-…``, ``/accept QI-…``, ``认领 QI-…``."""

    def __init__(self, message: str, *, next_step: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.next_step = next_step


class UnknownCase(CaseError):
    """No case has this number."""


class UnknownCommissioner(CaseError):
    """No commissioner has this handle (or name)."""


class NotAccepted(CaseError):
    """The action needs an owner and nobody has accepted the case yet."""


class NotPermitted(CaseError):
    """The case is someone else's (首问负责制): only its owner or a supervisor may do this."""


class NoActor(CaseError):
    """Nobody holds the case and no commissioner was named to act."""


def domain_name(domain: str) -> str:
    return DOMAIN_NAMES_ZH.get(domain, "综合咨询")


def actor_of(commissioner: Commissioner | None) -> str:
    return f"commissioner:{commissioner.handle}" if commissioner else "system"


def masked_enterprise(enterprise: Enterprise | None) -> str:
    """``厦门某某科技有限公司`` → ``厦门****公司``: enough to recognise, not to identify."""
    return mask_company(enterprise.name if enterprise else None)


def mask_company(name: str | None) -> str:
    """:func:`masked_enterprise` of a name read without its row (lists, exports)."""
    name = name or "未登记企业"
    if len(name) <= 4:
        return name[0] + "*" * (len(name) - 1)
    return name[:2] + "****" + name[-2:]


def console_link(public_url: str, number: str) -> str:
    """Where staff open a case in the web console (empty until a public URL is configured)."""
    return f"{public_url.rstrip('/')}/console/cases/{number}" if public_url else ""


def add_event(case: ServiceCase, kind: str, actor: str, now: datetime, text: str = "", **data: Any) -> None:
    case.events.append(CaseEvent(kind=kind, actor=actor, text=text, data=data, created_at=now))
    case.updated_at = now


async def notify_commissioner(
    session: AsyncSession,
    commissioner: Commissioner,
    kind: str,
    text: str,
    now: datetime,
    *,
    case_number: str | None = None,
    dedup_key: str | None = None,
) -> None:
    """Every commissioner notification goes to the console inbox, and to each linked messenger."""
    routes = [("console", commissioner.handle)]
    if commissioner.telegram_chat_id:
        routes.append(("telegram", commissioner.telegram_chat_id))
    if commissioner.wecom_user_id:
        routes.append(("wecom", commissioner.wecom_user_id))
    for channel, recipient in routes:
        await outbox.enqueue(
            session,
            channel=channel,
            recipient=recipient,
            kind=kind,
            payload={"text": text, "case": case_number, "commissioner": commissioner.handle},
            now=now,
            dedup_key=f"{dedup_key}:{channel}" if dedup_key else None,
        )


async def tell_enterprise(
    session: AsyncSession, case: ServiceCase, key: str, now: datetime, author: str, dedup_key: str | None = None,
    choices: Sequence[str] = (), **values: Any,
) -> None:
    if case.identity_id is None:
        return
    identity = await session.get(ChannelIdentity, case.identity_id)
    if identity is None:
        return
    text = notifications().render(key, number=case.number, **values)
    await outbox.message_enterprise(
        session, identity, text, kind=key, now=now, author=author, case_id=case.id, dedup_key=dedup_key,
        choices=choices,
    )


def rating_choices() -> tuple[str, ...]:
    """The answers a rating request offers to tap ("5分 非常满意" … "1分 非常不满意")."""
    return tuple(notifications().render("rating_choices").split("|"))


# --- queries ----------------------------------------------------------------------------------

CASE_LOAD = (selectinload(ServiceCase.events), joinedload(ServiceCase.owner), joinedload(ServiceCase.assignee),
             joinedload(ServiceCase.enterprise, innerjoin=True))  # two statements: the case with its people, its events


async def get_case(session: AsyncSession, number: str, *where: ColumnElement[bool]) -> ServiceCase | None:
    """The case with everything a case card or page reads loaded; ``where``: further conditions
    (the console's scope), checked in the same statement."""
    return (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.number == number.upper(), *where)
            .options(*CASE_LOAD)
            # A case created earlier in this transaction is already in the session without its
            # relationships loaded; refresh it so callers never trigger a lazy load.
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def require_case(session: AsyncSession, number: str) -> ServiceCase:
    case = await get_case(session, number)
    if case is None:
        raise UnknownCase(f"没有编号为 {number} 的案件")
    return case


async def case_of_enterprise(session: AsyncSession, number: str, enterprise_id: int | None) -> ServiceCase | None:
    """A case only if it belongs to this enterprise: anyone else gets the same None as for a
    number that does not exist, so case numbers cannot be probed."""
    case = await get_case(session, number)
    if case is None or enterprise_id is None or case.enterprise_id != enterprise_id:
        return None
    return case


async def cases_of_enterprise(session: AsyncSession, enterprise_id: int, limit: int = 10) -> Sequence[ServiceCase]:
    return (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.enterprise_id == enterprise_id)
            .options(selectinload(ServiceCase.owner), selectinload(ServiceCase.assignee))
            .order_by(ServiceCase.created_at.desc(), ServiceCase.id.desc())
            .limit(limit)
        )
    ).scalars().all()


async def open_cases_of_enterprise(session: AsyncSession, enterprise_id: int) -> Sequence[ServiceCase]:
    return (
        await session.execute(
            select(ServiceCase)
            .where(ServiceCase.enterprise_id == enterprise_id, ServiceCase.status.in_(OPEN_STATUSES))
            .options(selectinload(ServiceCase.events), selectinload(ServiceCase.owner),
                     selectinload(ServiceCase.assignee))
            .execution_options(populate_existing=True)
            .order_by(ServiceCase.updated_at.desc(), ServiceCase.id.desc())
        )
    ).scalars().all()


# What the commissioner said last to the enterprise, and what ends that exchange.
_CONVERSATION_EVENTS = (
    select(CaseEvent.case_id, CaseEvent.kind, ServiceCase.number)
    .join(ServiceCase, ServiceCase.id == CaseEvent.case_id)
    .where(
        ServiceCase.enterprise_id == bindparam("enterprise_id"),
        ServiceCase.status.in_(OPEN_STATUSES),
        CaseEvent.kind.in_(("replied", "live_ended")),
        CaseEvent.created_at >= bindparam("since"),
    )
    .order_by(CaseEvent.created_at.desc(), CaseEvent.id.desc())
)


async def in_conversation(session: AsyncSession, enterprise_id: int, since: datetime) -> ServiceCase | None:
    """The open case whose commissioner wrote to the enterprise most recently (not before
    ``since``): the enterprise's next messages are probably answers to it. A live session ended
    after that message closes the exchange (the replies were part of the live chat)."""
    ended: set[int] = set()
    rows = await session.execute(_CONVERSATION_EVENTS, {"enterprise_id": enterprise_id, "since": since})
    for case_id, kind, number in rows:
        if kind == "live_ended":
            ended.add(case_id)
        elif case_id not in ended:
            return await get_case(session, number)
    return None


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    since: datetime | None = None
    until: datetime | None = None
    domain: str | None = None
    district: str | None = None
    status: str | None = None
    commissioner_id: int | None = None


async def ledger(session: AsyncSession, where: LedgerFilter, limit: int = 500) -> Sequence[ServiceCase]:
    """The work ledger (工作台账): cases filtered by date, domain, district, status, commissioner."""
    stmt = select(ServiceCase).options(selectinload(ServiceCase.owner), selectinload(ServiceCase.assignee))
    if where.since:
        stmt = stmt.where(ServiceCase.created_at >= where.since)
    if where.until:
        stmt = stmt.where(ServiceCase.created_at < where.until)
    if where.domain:
        stmt = stmt.where(ServiceCase.domain == where.domain)
    if where.district:
        stmt = stmt.where(ServiceCase.district == where.district)
    if where.status:
        stmt = stmt.where(ServiceCase.status == where.status)
    if where.commissioner_id:
        stmt = stmt.where(
            (ServiceCase.owner_id == where.commissioner_id)
            | ((ServiceCase.owner_id.is_(None)) & (ServiceCase.assignee_id == where.commissioner_id))
        )
    return (await session.execute(stmt.order_by(ServiceCase.created_at, ServiceCase.id).limit(limit))).scalars().all()


# --- operations --------------------------------------------------------------------------------

async def open_case(
    session: AsyncSession,
    *,
    enterprise: Enterprise,
    identity: ChannelIdentity | None,
    domain: str,
    description: str,
    mode: str | None,
    district: str | None,
    now: datetime,
    public_url: str = "",
    policy: ServicePolicy | None = None,
) -> ServiceCase:
    """Issue a number, match a commissioner and resources, notify the commissioner. With the
    service ``policy`` the case is born with its working-calendar deadlines (acceptance and
    completion), so the inbox's overdue lists are SQL conditions from the first moment; without
    it ``stats.stamp_deadlines`` stamps them later."""
    number = await next_number(session, CASE_SERIES, now.year)
    assignee = await matching.choose_commissioner(session, domain if domain != GENERAL_DOMAIN else None, district)
    suggestions = await matching.suggest_resources(session, domain, district) if domain in DOMAIN_NAMES_ZH else {}
    case = ServiceCase(
        number=number,
        enterprise_id=enterprise.id,
        identity_id=identity.id if identity else None,
        domain=domain,
        description=description,
        mode=mode,
        district=district,
        status="new",
        assignee_id=assignee.id if assignee else None,
        suggestions=suggestions,
        created_at=now,
        updated_at=now,
        events=[],
    )
    if policy is not None:
        case.accept_due_at = policy.calendar.add_working_hours(now, policy.escalation_hours)
        case.resolve_due_at = policy.calendar.add_working_days(now, policy.completion_working_days)
    session.add(case)
    add_event(case, "created", "enterprise", now, description, domain=domain, mode=mode, district=district)
    if assignee is not None:
        assignee.last_assigned_at = now
        add_event(case, "assigned", "system", now, assignee.name, commissioner=assignee.handle)
        link = console_link(public_url, number)
        text = notifications().render(
            "case_assigned", number=number, domain_name=domain_name(domain), district=district,
            mode_name=MODE_ZH.get(mode or "", "方式未定"), enterprise_masked=masked_enterprise(enterprise),
            description=description[:200], link=link,
        )
        await notify_commissioner(session, assignee, "case_assigned", text, now, case_number=number)
    else:
        add_event(case, "unassigned", "system", now, "暂无可指派的服务专员")
    await session.flush()
    return case


def require_owner(case: ServiceCase, actor: Commissioner) -> None:
    """The rule of 首问负责制 for working an accepted case: its owner, or a supervisor."""
    if case.owner_id is None:
        raise NotAccepted(f"{case.number} 尚未被受理，请先受理", next_step=("accept", case.number))
    if case.owner_id != actor.id and not actor.is_supervisor:
        owner = case.owner.name if case.owner else "其他专员"
        raise NotPermitted(f"{case.number} 由{owner}负责（首问负责制），如需接手请由负责人转交")


async def accept(
    session: AsyncSession, case: ServiceCase, actor: Commissioner, now: datetime, *, tell: bool = True
) -> None:
    """The first commissioner to accept owns the case (首问负责制). ``tell=False``: the enterprise
    is not told (it has just been talking with this commissioner)."""
    if case.status != "new":
        if case.owner_id == actor.id:
            raise CaseError(f"您已受理 {case.number}")
        raise CaseError(f"{case.number} 当前状态为“{STATUS_ZH[case.status]}”，不能受理")
    if not actor.active:
        raise CaseError(f"{actor.name} 已停用，不能受理案件")
    case.owner_id, case.owner, case.status, case.accepted_at = actor.id, actor, "accepted", now
    add_event(case, "accepted", actor_of(actor), now, actor.name)
    if tell:
        await tell_enterprise(session, case, "enterprise_accepted", now, actor_of(actor), owner=mask_name(actor.name))


async def transfer(
    session: AsyncSession, case: ServiceCase, actor: Commissioner, to: Commissioner, reason: str, now: datetime
) -> None:
    if not reason.strip():
        raise CaseError("转交必须说明原因")
    if case.status not in OPEN_STATUSES:
        raise CaseError(f"{case.number} 当前状态为“{STATUS_ZH[case.status]}”，不能转交")
    if case.status == "accepted":
        require_owner(case, actor)
    if to.id == case.owner_id:
        raise CaseError(f"{to.name} 已是 {case.number} 的负责人")
    if not to.active:
        raise CaseError(f"{to.name} 已停用，不能接收案件")
    previous = case.owner or case.assignee
    if case.status == "accepted":
        case.owner_id, case.owner = to.id, to
    else:
        case.assignee_id, case.assignee = to.id, to
    to.last_assigned_at = now
    add_event(case, "transferred", actor_of(actor), now, reason, to=to.handle,
              **{"from": previous.handle if previous else None})
    text = notifications().render(
        "case_transferred_in", number=case.number, domain_name=domain_name(case.domain),
        from_name=previous.name if previous else "系统", reason=reason,
    )
    await notify_commissioner(session, to, "case_transferred", text, now, case_number=case.number)
    if case.status == "accepted":
        await tell_enterprise(session, case, "enterprise_transferred", now, actor_of(actor), owner=mask_name(to.name))


async def reply(session: AsyncSession, case: ServiceCase, actor: Commissioner, text: str, now: datetime) -> None:
    """A commissioner's message to the enterprise, in its own channel (relayed live if a live
    session is open)."""
    if not text.strip():
        raise CaseError("回复内容不能为空")
    if case.status in ("closed", "cancelled"):
        raise CaseError(f"{case.number} 已{STATUS_ZH[case.status]}，不能再回复；如需继续请先重新打开",
                        next_step=("reopen", case.number) if case.status == "closed" else None)
    if case.status == "new":
        await accept(session, case, actor, now)  # answering a new case takes it (首问负责制)
    else:
        require_owner(case, actor)
    add_event(case, "replied", actor_of(actor), now, text)
    await tell_enterprise(session, case, "enterprise_reply", now, actor_of(actor), owner=mask_name(actor.name),
                           text=text)


async def add_note(session: AsyncSession, case: ServiceCase, actor: Commissioner, text: str, now: datetime) -> None:
    """A private note on the timeline, for colleagues and the archive: the enterprise is not
    told, and its progress view does not list notes."""
    if not text.strip():
        raise CaseError("备注内容不能为空")
    add_event(case, "note", actor_of(actor), now, text)


async def message_from_enterprise(
    session: AsyncSession, case: ServiceCase, text: str, now: datetime
) -> Commissioner | None:
    """An enterprise's message about its case (an answer to the commissioner, a time, a detail):
    on the case timeline, and to the commissioner in charge through the outbox, as a new case
    is. Returns that commissioner (None if the case has nobody yet)."""
    add_event(case, "enterprise_message", "enterprise", now, text[:4000])
    holder = case.owner or case.assignee
    if holder is not None:
        message = notifications().render("live_message", number=case.number, text=text[:1000])
        await notify_commissioner(session, holder, "case_message", message, now, case_number=case.number)
    return holder


def check_resolvable(case: ServiceCase) -> None:
    """Only a case in progress can be resolved; a new one is accepted first."""
    if case.status != "accepted":
        raise CaseError(f"{case.number} 当前状态为“{STATUS_ZH[case.status]}”，只有办理中的案件可以办结",
                        next_step=("accept", case.number) if case.status == "new" else None)


async def resolve(
    session: AsyncSession,
    case: ServiceCase,
    actor: Commissioner,
    summary: str,
    now: datetime,
    *,
    institution_id: int | None = None,
    expert_id: int | None = None,
) -> None:
    check_resolvable(case)
    require_owner(case, actor)
    case.status, case.resolved_at = "resolved", now
    case.rating_round += 1
    case.rating_requested_at, case.rating_reminded_at = now, None
    served = {k: v for k, v in (("institution_id", institution_id), ("expert_id", expert_id)) if v}
    if served:
        case.suggestions = {**(case.suggestions or {}), "served": served}
    add_event(case, "resolved", actor_of(actor), now, summary, round=case.rating_round, **served)
    await tell_enterprise(session, case, "enterprise_resolved", now, actor_of(actor), summary=summary,
                          choices=rating_choices())


async def reopen(session: AsyncSession, case: ServiceCase, actor: Commissioner, reason: str, now: datetime) -> None:
    if case.status not in ("resolved", "closed"):
        raise CaseError(f"{case.number} 当前状态为“{STATUS_ZH[case.status]}”，只有已办结的案件可以重新打开")
    if case.owner_id != actor.id and not actor.is_supervisor:
        raise NotPermitted(f"只有负责人或主管可以重新打开 {case.number}")
    case.status, case.closed_at = "accepted", None
    add_event(case, "reopened", actor_of(actor), now, reason)
    owner = case.owner or actor
    await tell_enterprise(session, case, "enterprise_reopened", now, actor_of(actor), owner=mask_name(owner.name),
                           reason=reason)


async def cancel_by_enterprise(session: AsyncSession, case: ServiceCase, now: datetime) -> None:
    if case.status not in OPEN_STATUSES:
        raise CaseError(f"{case.number} 当前状态为“{STATUS_ZH[case.status]}”，不能撤回")
    case.status, case.closed_at = "cancelled", now
    add_event(case, "cancelled", "enterprise", now)
    holder = case.owner or case.assignee
    if holder is not None:
        text = notifications().render("case_cancelled_note", number=case.number)
        await notify_commissioner(session, holder, "case_cancelled", text, now, case_number=case.number)


async def commissioner_for_action(session: AsyncSession, case: ServiceCase, handle: str | None) -> Commissioner:
    """Who acts: the named commissioner, else the case owner (or the assignee, for accepting)."""
    if handle:
        commissioner = await matching.find_commissioner(session, handle)
        if commissioner is None:
            raise UnknownCommissioner(f"没有名为 {handle} 的服务专员")
        return commissioner
    default = case.owner or case.assignee
    if default is None:
        raise NoActor(f"{case.number} 没有负责人，请指定服务专员")
    return default
