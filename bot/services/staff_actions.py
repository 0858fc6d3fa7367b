"""The staff actions, defined once: what a commissioner can do from any front end.

The CLI (``qibot case …``), Telegram and WeCom each only parse their own syntax into a
:class:`Request` for one entry of :data:`ACTIONS` and render the :class:`Result`; who may do
what, and how it is done, lives here, so the front ends cannot drift apart (before this table
each parsed and ran the operations its own way, and some existed in the CLI only).

Every action has its arguments (:class:`Arg`, with the Chinese label usage lines show), a
permission check run before anything changes, and its execution through the case and live
services (which keep their own state checks). Refusals are :class:`cases.CaseError` subclasses
whose message carries no command syntax: a front end renders ``next_step`` in its own form
(:func:`explain`), so a Telegram user never reads ``qibot case …``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import cases, desk, live, matching
from bot.services.cases import CaseError, NoActor, NotPermitted, UnknownCommissioner
from bot.storage.models import Commissioner, LiveSession, ServiceCase

DEFAULT_SUMMARY = "已办结（服务专员未另写总结）"


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of an action: ``number`` (the case), ``text``, ``to`` (a commissioner's handle
    or name) or ``on`` (duty on/off). ``label`` names it in usage lines (``/reply QI-… 内容``)."""

    name: str
    label: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class Request:
    """What a front end parsed: the arguments of one action (unused ones stay empty)."""

    number: str | None = None
    text: str = ""
    to: str | None = None
    on: bool | None = None
    institution_id: int | None = None
    expert_id: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """What happened, for the front end to render in its own words."""

    action: str
    actor: Commissioner | None
    case: ServiceCase | None = None
    cases: Sequence[ServiceCase] = ()
    target: Commissioner | None = None  # transfer: who has the case now
    on_duty: bool | None = None  # duty: the commissioner's duty flag after the action
    live_outcome: str = ""  # end_live: what became of the case (see live.end)
    notified: bool = False  # outbox rows were written: the front end wakes the dispatcher


@dataclass(slots=True)
class _Work:
    session: AsyncSession
    actor: Commissioner | None
    request: Request
    now: datetime
    case: ServiceCase | None = None

    @property
    def me(self) -> Commissioner:
        assert self.actor is not None  # run() refuses an action that needs a commissioner without one
        return self.actor


class MissingArgument(CaseError):
    """A required argument was not given; a front end shows its usage line instead (checking
    :func:`incomplete` first), so this is the last line of defence."""

    def __init__(self, action: str, missing: Sequence[Arg]) -> None:
        super().__init__("缺少" + "、".join(a.label for a in missing))
        self.action = action


@dataclass(frozen=True, slots=True)
class StaffAction:
    name: str
    args: tuple[Arg, ...]
    who: str  # the permission rule in words
    permit: Callable[[_Work], Awaitable[None]]
    execute: Callable[[_Work], Awaitable[Result]]
    needs_actor: bool = True  # False: the terminal operator may run it without naming a commissioner

    @property
    def on_case(self) -> bool:
        return any(a.name == "number" for a in self.args)


# --- permission checks (the rules of bot/services/cases.py and live.py) -------------------------

async def _anyone(work: _Work) -> None:
    """Any linked commissioner (reading, or acting on oneself)."""


async def _owner_once_accepted(work: _Work) -> None:
    """An accepted case is its owner's (or a supervisor's): 首问负责制. Other states are left to
    the service, which says why the action does not fit the state."""
    case = _case(work)
    if case.status == "accepted":
        cases.require_owner(case, work.me)


async def _reply_permit(work: _Work) -> None:
    """Answering a new case takes it; once someone owns it, only they (or a supervisor) answer."""
    case = _case(work)
    if case.status not in ("new", "closed", "cancelled"):
        cases.require_owner(case, work.me)


async def _reopen_permit(work: _Work) -> None:
    case = _case(work)
    if case.status in ("resolved", "closed") and case.owner_id != work.me.id and not work.me.is_supervisor:
        raise NotPermitted(f"只有负责人或主管可以重新打开 {case.number}")


def _holds(case: ServiceCase, me: Commissioner, session: LiveSession | None) -> bool:
    """The owner (the assignee while nobody owns it), a supervisor, or whoever is talking with
    the enterprise in the case's live session (a colleague covering for an off-duty owner)."""
    holder_id = case.owner_id if case.owner_id is not None else case.assignee_id
    return me.id == holder_id or me.is_supervisor or (session is not None and session.commissioner_id == me.id)


async def _note_permit(work: _Work) -> None:
    case = _case(work)
    if not _holds(case, work.me, await live.active_for_case(work.session, case)):
        raise NotPermitted(f"只有 {case.number} 的负责人、主管或正在接待的专员可以添加备注")


async def _end_live_permit(work: _Work) -> None:
    case = _case(work)
    session = await live.active_for_case(work.session, case)
    if session is None:
        raise CaseError(f"{case.number} 没有进行中的人工会话")
    if not _holds(case, work.me, session):
        raise NotPermitted(f"只有接待该人工会话的专员、{case.number} 的负责人或主管可以结束人工会话")


# --- execution (through the services) ------------------------------------------------------------

def _case(work: _Work) -> ServiceCase:
    assert work.case is not None  # loaded by run() for every action with a number
    return work.case


async def _accept(work: _Work) -> Result:
    await cases.accept(work.session, _case(work), work.me, work.now)
    return Result("accept", work.me, _case(work), notified=True)


async def _reply(work: _Work) -> Result:
    """A reply keeps a live handoff from idling out."""
    case = _case(work)
    await cases.reply(work.session, case, work.me, work.request.text, work.now)
    await live.touch_for_case(work.session, case, work.now)
    return Result("reply", work.me, case, notified=True)


async def _note(work: _Work) -> Result:
    await cases.add_note(work.session, _case(work), work.me, work.request.text, work.now)
    return Result("note", work.me, _case(work))


async def find_commissioner(session: AsyncSession, handle_or_name: str) -> Commissioner:
    """By handle (or id), else by name: staff say "转交给李华" as often as "li"."""
    found = await matching.find_commissioner(session, handle_or_name)
    if found is None:
        named = (await session.execute(select(Commissioner).where(Commissioner.name == handle_or_name))).scalars()
        matches = list(named)
        found = matches[0] if len(matches) == 1 else None
    if found is None:
        raise UnknownCommissioner(f"没有名为 {handle_or_name} 的服务专员")
    return found


async def _transfer(work: _Work) -> Result:
    target = await find_commissioner(work.session, work.request.to or "")
    await cases.transfer(work.session, _case(work), work.me, target, work.request.text, work.now)
    return Result("transfer", work.me, _case(work), target=target, notified=True)


async def _resolve(work: _Work) -> Result:
    request = work.request
    await cases.resolve(work.session, _case(work), work.me, request.text.strip() or DEFAULT_SUMMARY, work.now,
                        institution_id=request.institution_id, expert_id=request.expert_id)
    return Result("resolve", work.me, _case(work), notified=True)


async def _reopen(work: _Work) -> Result:
    await cases.reopen(work.session, _case(work), work.me, work.request.text, work.now)
    return Result("reopen", work.me, _case(work), notified=True)


async def _end_live(work: _Work) -> Result:
    case = _case(work)
    session = await live.active_for_case(work.session, case)
    assert session is not None  # the permission check refused otherwise
    outcome = await live.end(work.session, session, cases.actor_of(work.me), work.now, from_outside=True)
    return Result("end_live", work.me, case, live_outcome=outcome, notified=True)


async def _duty(work: _Work) -> Result:
    """Without on/off: the current flag, unchanged."""
    if work.request.on is not None:
        work.me.on_duty = work.request.on
    return Result("duty", work.me, on_duty=work.me.on_duty)


async def _mine(work: _Work) -> Result:
    return Result("mine", work.me, cases=await desk.open_cases(work.session, work.me))


async def _show(work: _Work) -> Result:
    return Result("show", work.actor, _case(work))


_NUMBER = Arg("number", "编号")
_OWNER = "负责人或主管（首问负责制）"
ACTIONS: dict[str, StaffAction] = {a.name: a for a in (
    StaffAction("accept", (_NUMBER,), "任何服务专员：先受理者负责（首问负责制）", _anyone, _accept),
    StaffAction("reply", (_NUMBER, Arg("text", "内容")), _OWNER + "；回复待受理的案件即受理它", _reply_permit, _reply),
    StaffAction("note", (_NUMBER, Arg("text", "内容")), "负责人（未受理时为被指派人）、主管或正在接待人工会话的专员",
                _note_permit, _note),
    StaffAction("transfer", (_NUMBER, Arg("to", "账号"), Arg("text", "原因")), "已受理的案件：" + _OWNER
                + "；待受理的案件：任何服务专员", _owner_once_accepted, _transfer),
    StaffAction("resolve", (_NUMBER, Arg("text", "总结", required=False)), _OWNER, _owner_once_accepted, _resolve),
    StaffAction("reopen", (_NUMBER, Arg("text", "原因")), _OWNER, _reopen_permit, _reopen),
    StaffAction("end_live", (_NUMBER,), "接待该人工会话的专员、负责人或主管", _end_live_permit, _end_live),
    StaffAction("duty", (Arg("on", "on|off", required=False),), "本人", _anyone, _duty),
    StaffAction("mine", (), "本人", _anyone, _mine),
    StaffAction("show", (_NUMBER,), "任何服务专员（终端操作员无需指定身份）", _anyone, _show, needs_actor=False),
)}


def _missing(name: str, request: Request) -> list[Arg]:
    given = {"number": bool(request.number), "text": bool(request.text.strip()), "to": bool(request.to),
             "on": request.on is not None}
    return [a for a in ACTIONS[name].args if a.required and not given[a.name]]


def incomplete(name: str, request: Request) -> bool:
    """Whether a required argument is missing (the front end shows the usage line instead)."""
    return bool(_missing(name, request))


async def run(
    session: AsyncSession, me: Commissioner | None, name: str, request: Request, now: datetime
) -> Result:
    """Run one action as ``me`` inside the caller's transaction: check the arguments and the
    permission, then act. Raises :class:`cases.CaseError` (a subclass) with the reason.
    ``me=None`` is the terminal operator, who may only run actions that need nobody named."""
    action = ACTIONS[name]
    missing = _missing(name, request)
    if missing:
        raise MissingArgument(name, missing)
    work = _Work(session, me, request, now)
    if action.on_case:
        work.case = await cases.require_case(session, request.number or "")
    if me is None and action.needs_actor:
        raise NoActor(f"{work.case.number} 没有负责人，请指定服务专员" if work.case else "请指定服务专员")
    await action.permit(work)
    return await action.execute(work)


def explain(error: CaseError, step: Callable[[str, str], str]) -> str:
    """The refusal with its next step in the front end's own syntax (``step(action, number)``)."""
    return f"{error}（{step(*error.next_step)}）" if error.next_step else str(error)
